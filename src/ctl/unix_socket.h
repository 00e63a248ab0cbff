// Unix stream sockets carrying one JSON text line each way.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include <tl/expected.hpp>

namespace cmm::ctl {

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  int release();
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Binds and listens at `path` with mode 0600.
tl::expected<Fd, std::string> Listen(const std::string& path);
// Errors keep the errno so callers can tell "nobody there" from others.
struct ConnectError {
  int err;
  std::string message;
};
tl::expected<Fd, ConnectError> Connect(const std::string& path);

// Both give up after `timeout`.
tl::expected<void, std::string> SendLine(int fd, const std::string& line, std::chrono::milliseconds timeout);
tl::expected<std::string, std::string> RecvLine(int fd, std::chrono::milliseconds timeout, size_t max_bytes = 1 << 20);

// The peer's uid (SO_PEERCRED).
tl::expected<uid_t, std::string> PeerUid(int fd);

}  // namespace cmm::ctl
