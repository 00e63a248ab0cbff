#include "proto/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "proto/unix_socket.h"

namespace cmm::proto {

Result<int> ListenSeqpacket(const std::string& path) {
  auto fd = ListenUnix(path, SOCK_SEQPACKET, 64);
  if (!fd) return tl::unexpected(fd.error());
  return fd->release();
}

Result<int> ConnectSeqpacket(const std::string& path) {
  auto fd = ConnectUnix(path, SOCK_SEQPACKET);
  if (!fd) return tl::unexpected(fd.error());
  return fd->release();
}

Result<void> Send(int fd, const Message& m, int pass_fd) {
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
  if (n < 0) return Fail(ErrorCode::kIo, fmt::format("send: {}", std::strerror(errno)));
  return {};
}

Result<void> SetReceiveTimeout(int fd, std::chrono::milliseconds timeout) {
  const timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("SO_RCVTIMEO: {}", std::strerror(errno)));
  }
  return {};
}

Result<Received> Receive(int fd, std::chrono::milliseconds timeout) {
  const auto timed_out = [] { return Fail(ErrorCode::kTimedOut, "timed out waiting for the peer"); };
  // A negative timeout blocks in recvmsg up to the socket's SO_RCVTIMEO:
  // one system call per packet, for the hot paths.
  if (timeout.count() >= 0) {
    pollfd p{fd, POLLIN, 0};
    int ready;
    do {
      ready = poll(&p, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0) return timed_out();
    if (ready < 0) return Fail(ErrorCode::kIo, fmt::format("poll: {}", std::strerror(errno)));
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
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return timed_out();
  if (n < 0) return Fail(ErrorCode::kIo, fmt::format("receive: {}", std::strerror(errno)));
  if (n == 0) return Fail(ErrorCode::kUnavailable, "the peer closed the connection");
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
    return Fail(ErrorCode::kProtocol, "packet too large");
  }
  auto m = Decode(std::span<const uint8_t>(buf.get(), static_cast<size_t>(n)));
  if (!m) {
    if (passed >= 0) close(passed);
    return Fail(ErrorCode::kProtocol, m.error());
  }
  return Received{std::move(*m), passed};
}

}  // namespace cmm::proto
