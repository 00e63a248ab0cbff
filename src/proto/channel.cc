#include "proto/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace cmm::proto {

namespace {

tl::expected<sockaddr_un, std::string> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return tl::unexpected(fmt::format("socket path too long: {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

tl::expected<int, std::string> ListenSeqpacket(const std::string& path) {
  auto addr = Address(path);
  if (!addr) return tl::unexpected(addr.error());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  // A socket file nobody answers on is stale: replace it.
  if (const int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); probe >= 0) {
    const bool live = connect(probe, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0;
    close(probe);
    if (live) {
      close(fd);
      return tl::unexpected(fmt::format("{} is in use by a running hypervisor", path));
    }
  }
  unlink(path.c_str());
  const mode_t old = umask(0177);
  const int rc = bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  umask(old);
  if (rc != 0 || listen(fd, 64) != 0) {
    const int e = errno;
    close(fd);
    return tl::unexpected(fmt::format("listen on {}: {}", path, std::strerror(e)));
  }
  return fd;
}

Result<int> ConnectSeqpacket(const std::string& path) {
  auto addr = Address(path);
  if (!addr) return Fail(ErrorCode::kInvalid, addr.error());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return Fail(ErrorCode::kIo, fmt::format("socket: {}", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int e = errno;
    close(fd);
    const bool nobody = e == ENOENT || e == ECONNREFUSED;
    return Fail(nobody ? ErrorCode::kUnavailable : ErrorCode::kIo,
                fmt::format("connect to {}: {}", path, std::strerror(e)));
  }
  return fd;
}

tl::expected<void, std::string> Send(int fd, const Message& m, int pass_fd) {
  auto bytes = Encode(m);
  iovec iov{bytes.data(), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return tl::unexpected(fmt::format("send: {}", std::strerror(errno)));
  return {};
}

tl::expected<void, std::string> SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) {
  const timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    return tl::unexpected(fmt::format("SO_RCVTIMEO: {}", std::strerror(errno)));
  }
  return {};
}

tl::expected<Received, std::string> Receive(int fd, std::chrono::milliseconds timeout) {
  // A negative timeout blocks in recvmsg up to the socket's SO_RCVTIMEO:
  // one system call per packet, for the hot paths.
  if (timeout.count() >= 0) {
    pollfd p{fd, POLLIN, 0};
    int ready;
    do {
      ready = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return tl::unexpected(std::string(kTimedOut));
    if (ready < 0) return tl::unexpected(fmt::format("poll: {}", std::strerror(errno)));
  }
  // One buffer per thread, never cleared: recvmsg says how much is valid.
  static thread_local std::unique_ptr<uint8_t[]> buf(new uint8_t[kHeaderBytes + kMaxPayload + 1]);
  iovec iov{buf.get(), kHeaderBytes + kMaxPayload + 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    return tl::unexpected(std::string(kTimedOut));
  }
  if (n < 0) return tl::unexpected(fmt::format("receive: {}", std::strerror(errno)));
  if (n == 0) return tl::unexpected(std::string(kPeerClosed));
  // Take ownership of any descriptors first, so none leaks on a bad packet.
  int passed = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (passed < 0) {
        passed = got;
      } else {
        close(got);  // one descriptor per message at most
      }
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    if (passed >= 0) close(passed);
    return tl::unexpected(std::string("packet too large"));
  }
  auto m = Decode(std::span<const uint8_t>(buf.get(), static_cast<size_t>(n)));
  if (!m) {
    if (passed >= 0) close(passed);
    return tl::unexpected(m.error());
  }
  return Received{std::move(*m), passed};
}

}  // namespace cmm::proto
