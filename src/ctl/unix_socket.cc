#include "ctl/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cmm::ctl {

namespace {

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
  auto fd = proto::ListenUnix(path, SOCK_STREAM, 16);
  if (!fd) return tl::unexpected(fd.error().message);
  return std::move(*fd);
}

Result<Fd> Connect(const std::string& path) { return proto::ConnectUnix(path, SOCK_STREAM); }

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
