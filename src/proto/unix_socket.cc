#include "proto/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cmm::proto {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

int Fd::release() {
  const int f = fd_;
  fd_ = -1;
  return f;
}

namespace {

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) {
    return Fail(ErrorCode::kInvalid,
                fmt::format("socket path {} is longer than {} bytes", path, sizeof(a.sun_path) - 1));
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

}  // namespace

Result<Fd> ConnectUnix(const std::string& path, int type) {
  auto addr = Address(path);
  if (!addr) return tl::unexpected(addr.error());
  Fd fd(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd) return Fail(ErrorCode::kIo, fmt::format("socket: {}", std::strerror(errno)));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int e = errno;
    const bool nobody = e == ENOENT || e == ECONNREFUSED;
    return Fail(nobody ? ErrorCode::kUnavailable : ErrorCode::kIo,
                fmt::format("connect to {}: {}", path, std::strerror(e)));
  }
  return fd;
}

Result<Fd> ListenUnix(const std::string& path, int type, int backlog) {
  auto addr = Address(path);
  if (!addr) return tl::unexpected(addr.error());
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Fail(ErrorCode::kExists, fmt::format("{} exists and is not a socket", path));
    }
    auto live = ConnectUnix(path, type);
    if (live) return Fail(ErrorCode::kExists, fmt::format("{} is in use by a running process", path));
    if (live.error().code == ErrorCode::kUnavailable) unlink(path.c_str());  // left by a process that died
  }
  Fd fd(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd) return Fail(ErrorCode::kIo, fmt::format("socket: {}", std::strerror(errno)));
  const mode_t old = umask(0177);
  const int rc = bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  const int bind_errno = errno;
  umask(old);
  if (rc != 0) return Fail(ErrorCode::kIo, fmt::format("bind {}: {}", path, std::strerror(bind_errno)));
  if (listen(fd.get(), backlog) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("listen on {}: {}", path, std::strerror(errno)));
  }
  return fd;
}

}  // namespace cmm::proto
