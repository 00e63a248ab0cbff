// A SOCK_SEQPACKET unix socket carrying one message per packet, and a file
// descriptor beside a message when one is passed (SCM_RIGHTS).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "core/error.h"

#include "proto/messages.h"

namespace cmm::proto {

// Binds and listens at `path` (mode 0600), replacing a stale socket file.
Result<int> ListenSeqpacket(const std::string& path);
// kUnavailable when nobody listens there (no such socket, or refused).
Result<int> ConnectSeqpacket(const std::string& path);
// Sets SO_RCVTIMEO (0: none), for Receive with kSocketTimeout.
Result<void> SetReceiveTimeout(int fd, std::chrono::milliseconds timeout);
inline constexpr std::chrono::milliseconds kSocketTimeout{-1};

// Sends `m`, with `pass_fd` (if >= 0) as SCM_RIGHTS. kIo when it cannot.
Result<void> Send(int fd, const Message& m, int pass_fd = -1);

struct Received {
  Message message;
  int fd = -1;  // a passed descriptor, owned by the caller; -1 if none
};
// Waits up to `timeout`, or with kSocketTimeout up to the socket's
// SO_RCVTIMEO (none set: for ever). The error's code says why: kTimedOut,
// kUnavailable (the peer closed the connection), kProtocol (a packet that
// is too large or does not decode), kIo.
Result<Received> Receive(int fd, std::chrono::milliseconds timeout);

}  // namespace cmm::proto
