// The pool's reserve for OOM give-backs (issue 25): the most taken back in
// any one round of a window of rounds, nothing when none was.
#include <gtest/gtest.h>

#include "pool/giveback_reserve.h"

namespace cmm::hv {
namespace {

TEST(GiveBackReserve, HoldsTheLargestGiveBackOfTheLastRoundsThenForgetsIt) {
  GiveBackReserve r(4);
  EXPECT_EQ(r.value(), Bytes(0));
  r.Add(MiB(64));
  r.Add(MiB(0));
  r.Add(MiB(16));
  EXPECT_EQ(r.value(), MiB(64));
  r.Add(MiB(0));
  EXPECT_EQ(r.value(), MiB(64));  // four rounds: 64, 0, 16, 0
  r.Add(MiB(0));
  EXPECT_EQ(r.value(), MiB(16));  // 64 has left the window
  r.Add(MiB(0));
  r.Add(MiB(0));
  r.Add(MiB(0));
  EXPECT_EQ(r.value(), Bytes(0));
}

TEST(GiveBackReserve, ANegativeReadingCountsAsNothing) {
  GiveBackReserve r(2);
  r.Add(Bytes(-5));
  EXPECT_EQ(r.value(), Bytes(0));
}

}  // namespace
}  // namespace cmm::hv
