#include "ctl/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cmm::ctl {

namespace {
constexpr auto kIoTimeout = std::chrono::seconds(2);
}

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n != nullptr ? n : fmt::format("errno {}", err);
}

nlohmann::json ErrorReply(int err, const std::string& message) {
  return {{"ok", false}, {"errno", err}, {"error", ErrnoName(err)}, {"message", message}};
}

nlohmann::json ErrorReply(const Error& e) { return ErrorReply(ErrnoOf(e.code), e.message); }

nlohmann::json OkReply() { return {{"ok", true}}; }

tl::expected<std::unique_ptr<Server>, std::string> Server::Start(const std::string& path, Handler handler) {
  auto listener = Listen(path);
  if (!listener) return tl::unexpected(listener.error());
  Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return tl::unexpected(fmt::format("eventfd: {}", std::strerror(errno)));
  auto s = std::unique_ptr<Server>(new Server(path, std::move(*listener), std::move(wake), std::move(handler)));
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  return s;
}

Server::Server(std::string path, Fd listener, Fd wake, Handler handler)
    : path_(std::move(path)), listener_(std::move(listener)), wake_(std::move(wake)), handler_(std::move(handler)) {}

Server::~Server() {
  const uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    // The thread also stops when the listener closes below; nothing else to do.
  }
  if (thread_.joinable()) thread_.join();
  unlink(path_.c_str());
}

void Server::Run() {
  while (true) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents & POLLIN) {
      Fd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn) Serve(std::move(conn));
    }
  }
}

void Server::Serve(Fd conn) {
  const auto uid = PeerUid(conn.get());
  if (!uid) return;
  const Peer peer{*uid};
  // One request per connection keeps a slow client from holding the thread.
  auto line = RecvLine(conn.get(), kIoTimeout, 64 * 1024);
  if (!line) return;
  nlohmann::json reply;
  try {
    const auto request = nlohmann::json::parse(*line);
    if (!request.is_object() || !request.contains("op") || !request["op"].is_string()) {
      reply = ErrorReply(EINVAL, "a request is a JSON object with a string \"op\"");
    } else {
      reply = handler_(request, peer);
    }
  } catch (const nlohmann::json::exception& e) {
    reply = ErrorReply(EINVAL, fmt::format("bad request: {}", e.what()));
  }
  (void)SendLine(conn.get(), reply.dump(), kIoTimeout);
}

}  // namespace cmm::ctl
