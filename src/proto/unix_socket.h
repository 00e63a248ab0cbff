// The one set of unix-socket helpers: the hcall channel (SOCK_SEQPACKET)
// and the control sockets (SOCK_STREAM) are both made here.
#pragma once

#include <string>

#include "core/error.h"

namespace cmm::proto {

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

// Listens at `path` (a socket of `type`), mode 0600 from the start: there
// is no moment when others could connect. A socket file nobody answers on
// was left by a process that died and is replaced; one that answers is
// kExists ("in use by a running process").
Result<Fd> ListenUnix(const std::string& path, int type, int backlog);

// kUnavailable when nobody listens there (no such socket, or refused);
// kInvalid for a path too long for a socket address.
Result<Fd> ConnectUnix(const std::string& path, int type);

}  // namespace cmm::proto
