// Unix stream sockets carrying one JSON text line each way, made by the
// one set of socket helpers (proto/unix_socket).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include <tl/expected.hpp>

#include "core/error.h"
#include "proto/unix_socket.h"

namespace cmm::ctl {

using proto::Fd;

// A control socket (SOCK_STREAM) at `path`, mode 0600; a stale one left by
// a dead process is replaced, a live one refused (proto::ListenUnix).
tl::expected<Fd, std::string> Listen(const std::string& path);
// kUnavailable when nothing is running there.
Result<Fd> Connect(const std::string& path);

// Both give up after `timeout`.
tl::expected<void, std::string> SendLine(int fd, const std::string& line, std::chrono::milliseconds timeout);
tl::expected<std::string, std::string> RecvLine(int fd, std::chrono::milliseconds timeout, size_t max_bytes = 1 << 20);

// The peer's uid (SO_PEERCRED).
tl::expected<uid_t, std::string> PeerUid(int fd);

}  // namespace cmm::ctl
