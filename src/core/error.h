// One error type across the layers, like leveldb's Status: a named code a
// caller decides on, and a message a person reads. No caller looks inside
// the message to decide anything.
#pragma once

#include <cerrno>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace cmm {

enum class ErrorCode : uint8_t {
  kInvalid,      // the request or the options cannot be met as given
  kNotFound,     // no such thing
  kExists,       // already there (a name in use)
  kUnavailable,  // nobody answers where the other side should be (no hypervisor)
  kRefused,      // the other side answered no
  kBusy,         // in use now; nothing was changed (a hot-remove cancelled)
  kTimedOut,     // no answer within the time allowed
  kNoMemory,     // out of memory (in the guest: reclaim and the OOM notifiers freed too little)
  kProtocol,     // the other side said something that makes no sense
  kIo,           // the operating system said no
};

constexpr std::string_view CodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalid: return "invalid";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kExists: return "exists";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kRefused: return "refused";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kTimedOut: return "timed out";
    case ErrorCode::kNoMemory: return "no memory";
    case ErrorCode::kProtocol: return "protocol";
    case ErrorCode::kIo: return "io";
  }
  return "?";
}

// At the edges that speak errno (the wire's Error message, a control
// reply's "errno"), each code is one errno value, and back.
constexpr int ErrnoOf(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalid: return EINVAL;
    case ErrorCode::kNotFound: return ENOENT;
    case ErrorCode::kExists: return EEXIST;
    case ErrorCode::kUnavailable: return EHOSTUNREACH;
    case ErrorCode::kRefused: return EPERM;
    case ErrorCode::kBusy: return EBUSY;
    case ErrorCode::kTimedOut: return ETIMEDOUT;
    case ErrorCode::kNoMemory: return ENOMEM;
    case ErrorCode::kProtocol: return EPROTO;
    case ErrorCode::kIo: return EIO;
  }
  return EIO;
}

constexpr ErrorCode CodeOfErrno(int err) {
  switch (err) {
    case EINVAL: case ERANGE: return ErrorCode::kInvalid;
    case ENOENT: return ErrorCode::kNotFound;
    case EEXIST: return ErrorCode::kExists;
    case EHOSTUNREACH: case ECONNREFUSED: return ErrorCode::kUnavailable;
    case EPERM: case EACCES: return ErrorCode::kRefused;
    case EBUSY: return ErrorCode::kBusy;
    case ETIMEDOUT: return ErrorCode::kTimedOut;
    case ENOMEM: return ErrorCode::kNoMemory;
    case EPROTO: return ErrorCode::kProtocol;
    default: return ErrorCode::kIo;
  }
}

struct Error {
  ErrorCode code = ErrorCode::kIo;
  std::string message;

  // The same error said in a wider context: "hypervisor at P: " + message.
  Error Within(std::string_view context) const { return {code, std::string(context) + ": " + message}; }
};

inline std::ostream& operator<<(std::ostream& out, const Error& e) { return out << e.message; }

template <class T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
  return tl::unexpected(Error{code, std::move(message)});
}

}  // namespace cmm
