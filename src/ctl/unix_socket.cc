#include "ctl/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cmm::ctl {

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

tl::expected<sockaddr_un, std::string> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path)) {
    return tl::unexpected(fmt::format("socket path {} is longer than {} bytes", path, sizeof(a.sun_path) - 1));
  }
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool WaitFor(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

tl::expected<Fd, std::string> Listen(const std::string& path) {
  auto addr = Address(path);
  if (!addr) return tl::unexpected(addr.error());
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return tl::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  // Created 0600 from the start: no moment where others could connect.
  const mode_t old = umask(0177);
  const int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr));
  const int bind_errno = errno;
  umask(old);
  if (rc != 0) return tl::unexpected(fmt::format("bind {}: {}", path, std::strerror(bind_errno)));
  if (listen(fd.get(), 16) != 0) return tl::unexpected(fmt::format("listen {}: {}", path, std::strerror(errno)));
  return fd;
}

tl::expected<Fd, ConnectError> Connect(const std::string& path) {
  auto addr = Address(path);
  if (!addr) return tl::unexpected(ConnectError{ENAMETOOLONG, addr.error()});
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return tl::unexpected(ConnectError{errno, fmt::format("socket: {}", std::strerror(errno))});
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int e = errno;
    return tl::unexpected(ConnectError{e, fmt::format("connect {}: {}", path, std::strerror(e))});
  }
  return fd;
}

tl::expected<void, std::string> SendLine(int fd, const std::string& line, std::chrono::milliseconds timeout) {
  const std::string data = line + "\n";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, deadline)) return tl::unexpected(std::string("timed out sending"));
    } else {
      return tl::unexpected(fmt::format("send: {}", std::strerror(errno)));
    }
  }
  return {};
}

tl::expected<std::string, std::string> RecvLine(int fd, std::chrono::milliseconds timeout, size_t max_bytes) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      const auto nl = out.find('\n');
      if (nl != std::string::npos) return out.substr(0, nl);
      if (out.size() > max_bytes) return tl::unexpected(fmt::format("message longer than {} bytes", max_bytes));
    } else if (n == 0) {
      return tl::unexpected(std::string("connection closed before a full message"));
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFor(fd, POLLIN, deadline)) return tl::unexpected(std::string("timed out waiting for a reply"));
    } else {
      return tl::unexpected(fmt::format("recv: {}", std::strerror(errno)));
    }
  }
}

tl::expected<uid_t, std::string> PeerUid(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return tl::unexpected(fmt::format("SO_PEERCRED: {}", std::strerror(errno)));
  }
  return cred.uid;
}

}  // namespace cmm::ctl
