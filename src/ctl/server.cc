#include "ctl/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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

tl::expected<std::unique_ptr<Server>, std::string> Server::Start(const std::string& path, Handler handler,
                                                                 size_t workers) {
  auto listener = Listen(path);
  if (!listener) return tl::unexpected(listener.error());
  Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return tl::unexpected(fmt::format("eventfd: {}", std::strerror(errno)));
  auto s = std::unique_ptr<Server>(new Server(path, std::move(*listener), std::move(wake), std::move(handler),
                                                  std::max<size_t>(1, workers)));
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  return s;
}

Server::Server(std::string path, Fd listener, Fd wake, Handler handler, size_t workers)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      handler_(std::move(handler)),
      max_workers_(workers) {}

Server::~Server() {
  const uint64_t one = 1;
  if (write(wake_.get(), &one, sizeof(one)) < 0) {
    // The thread also stops when the listener closes below; nothing else to do.
  }
  if (thread_.joinable()) thread_.join();
  Join(/*all=*/true);
  unlink(path_.c_str());
}

void Server::Join(bool all) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (all || it->done->load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
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
      if (!conn) continue;
      if (max_workers_ == 1) {
        Serve(std::move(conn));
        continue;
      }
      Join(/*all=*/false);
      if (workers_.size() >= max_workers_) {
        (void)SendLine(conn.get(), ErrorReply(EBUSY, fmt::format("{} requests are being answered; try again",
                                                                   workers_.size())).dump(),
                       kIoTimeout);
        continue;
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      workers_.push_back({std::thread([this, done, c = std::move(conn)]() mutable {
                            Serve(std::move(c));
                            done->store(true);
                          }),
                          done});
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
  const auto request = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
  if (!request.is_object() || !request.contains("op") || !request["op"].is_string()) {
    reply = ErrorReply(EINVAL, "a request is a JSON object with a string \"op\"");
  } else {
    try {
      reply = handler_(request, peer);
    } catch (const std::exception& e) {
      // A handler's failure answers this request only; the endpoint goes on.
      reply = ErrorReply(EIO, fmt::format("the request failed: {}", e.what()));
    }
  }
  // Text from a peer may hold bytes that are not UTF-8: escaped, not thrown.
  (void)SendLine(conn.get(), reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), kIoTimeout);
}

}  // namespace cmm::ctl
