// The one error type: at the edges that speak errno each code is one errno
// value and reads back as the same code.
#include <gtest/gtest.h>

#include "core/error.h"

namespace cmm {
namespace {

TEST(Error, EachCodeIsOneErrnoAtTheEdgeAndReadsBackAsItself) {
  for (const ErrorCode c : {ErrorCode::kInvalid, ErrorCode::kNotFound, ErrorCode::kExists, ErrorCode::kUnavailable,
                            ErrorCode::kRefused, ErrorCode::kBusy, ErrorCode::kTimedOut, ErrorCode::kNoMemory,
                            ErrorCode::kProtocol, ErrorCode::kIo}) {
    EXPECT_EQ(CodeOfErrno(ErrnoOf(c)), c) << CodeName(c);
  }
  // The errno values the control replies have always carried.
  EXPECT_EQ(ErrnoOf(ErrorCode::kBusy), EBUSY);  // a hot-remove cancelled
  EXPECT_EQ(ErrnoOf(ErrorCode::kNotFound), ENOENT);
  EXPECT_EQ(CodeOfErrno(ERANGE), ErrorCode::kInvalid);
  EXPECT_EQ(CodeOfErrno(ENOSPC), ErrorCode::kIo);
}

TEST(Error, WithinKeepsTheCodeAndSaysTheContext) {
  const Error e = Error{ErrorCode::kUnavailable, "connect: No such file"}.Within("hypervisor at /run/x");
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.message, "hypervisor at /run/x: connect: No such file");
}

}  // namespace
}  // namespace cmm
