#include "members/qemu/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "members/qemu/qmp_decode.h"

namespace cmm::hv {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

}  // namespace

tl::expected<std::unique_ptr<QmpClient>, std::string> QmpClient::Connect(const std::string& path,
                                                                         std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return tl::unexpected(fmt::format("QMP socket path too long: {}", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    close(fd);
    return tl::unexpected(fmt::format("cannot connect to QMP at {}: {}", path, std::strerror(e)));
  }
  return Open(fd, path, timeout);
}

tl::expected<std::unique_ptr<QmpClient>, std::string> QmpClient::Open(int fd, const std::string& path,
                                                                      std::chrono::milliseconds timeout) {
  std::unique_ptr<QmpClient> c(new QmpClient(fd));
  const auto deadline = Clock::now() + timeout;
  auto greeting = c->Next(deadline);
  if (!greeting) return tl::unexpected(fmt::format("QMP at {}: no greeting: {}", path, greeting.error().message));
  auto version = DecodeGreeting(*greeting);
  if (!version) return tl::unexpected(fmt::format("QMP at {}: {}", path, version.error().message));
  c->version_ = std::move(*version);
  auto caps = c->Execute("qmp_capabilities", json::object(),
                         std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  if (!caps) return tl::unexpected(fmt::format("QMP at {}: capabilities: {}", path, caps.error().message));
  return c;
}

QmpClient::~QmpClient() { close(fd_); }

QmpError QmpClient::Lose(std::string why) {
  if (lost_reason_.empty()) lost_reason_ = std::move(why);
  return QmpError{true, "", lost_reason_};
}

tl::expected<bool, QmpError> QmpClient::Fill(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  pollfd p{fd_, POLLIN, 0};
  const int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left)));
  if (n < 0 && errno != EINTR) return tl::unexpected(Lose(fmt::format("poll: {}", std::strerror(errno))));
  if (n <= 0) return false;
  char chunk[65536];
  const ssize_t got = recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
  if (got == 0) return tl::unexpected(Lose("QEMU closed the QMP connection"));
  if (got < 0) {
    if (errno == EAGAIN || errno == EINTR) return false;
    if (errno == ECONNRESET) return tl::unexpected(Lose("QEMU closed the QMP connection"));
    return tl::unexpected(Lose(fmt::format("QMP read: {}", std::strerror(errno))));
  }
  stream_.Append(std::string_view(chunk, static_cast<size_t>(got)));
  return true;
}

tl::expected<std::optional<json>, QmpError> QmpClient::TakeMessage() {
  auto m = stream_.Take();
  if (!m) return tl::unexpected(Lose(m.error().message));
  return std::move(*m);
}

tl::expected<void, QmpError> QmpClient::Keep(QmpEvent event) {
  const auto now = Clock::now();
  if (now - events_second_ >= std::chrono::seconds(1)) {
    events_second_ = now;
    events_this_second_ = 0;
  }
  if (++events_this_second_ > kMaxEventsPerSecond) {
    return tl::unexpected(Lose(fmt::format("QMP sent over {} events in a second", kMaxEventsPerSecond)));
  }
  events_.push_back(std::move(event));
  while (events_.size() > kMaxKeptEvents) events_.pop_front();
  return {};
}

tl::expected<json, QmpError> QmpClient::Next(Clock::time_point deadline) {
  if (lost()) return tl::unexpected(QmpError{true, "", lost_reason_});
  for (;;) {
    auto line = TakeMessage();
    if (!line) return tl::unexpected(line.error());
    if (*line) return std::move(**line);
    auto filled = Fill(deadline);
    if (!filled) return tl::unexpected(filled.error());
    if (!*filled && Clock::now() >= deadline) return tl::unexpected(Lose("QMP did not answer in time"));
  }
}

tl::expected<json, QmpError> QmpClient::Execute(const std::string& command, const json& arguments,
                                                std::chrono::milliseconds timeout) {
  if (lost()) return tl::unexpected(QmpError{true, "", lost_reason_});
  const uint64_t id = next_id_++;
  json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  const std::string text = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  for (size_t sent = 0; sent < text.size();) {
    const ssize_t n = send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 && (errno == EPIPE || errno == ECONNRESET)) return tl::unexpected(Lose("QEMU closed the QMP connection"));
    if (n <= 0) return tl::unexpected(Lose(fmt::format("QMP write: {}", std::strerror(errno))));
    sent += static_cast<size_t>(n);
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto next = Next(deadline);
    if (!next) return tl::unexpected(next.error());
    auto m = DecodeMessage(std::move(*next));
    if (!m) return tl::unexpected(Lose("QMP sent " + m.error().message));
    if (m->kind == QmpMessage::Kind::kEvent) {
      if (auto kept = Keep({std::move(m->event), std::move(m->data)}); !kept) return tl::unexpected(kept.error());
      continue;
    }
    // A reply to no command of ours: the stream is out of step.
    if (m->id != id) return tl::unexpected(Lose(fmt::format("QMP reply out of order: id {} for {}", m->id, id)));
    if (m->kind == QmpMessage::Kind::kReturn) return std::move(m->data);
    return tl::unexpected(QmpError{false, Printable(m->error_class, 40), fmt::format("{}: {}", command, m->error_desc)});
  }
}

tl::expected<void, QmpError> QmpClient::ReadAvailable(std::chrono::milliseconds timeout) {
  if (lost()) return tl::unexpected(QmpError{true, "", lost_reason_});
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto filled = Fill(deadline);
    if (!filled) return tl::unexpected(filled.error());
    for (;;) {
      auto line = TakeMessage();
      if (!line) return tl::unexpected(line.error());
      if (!*line) break;
      auto m = DecodeMessage(std::move(**line));
      if (!m) return tl::unexpected(Lose("QMP sent " + m.error().message));
      if (m->kind != QmpMessage::Kind::kEvent) return tl::unexpected(Lose(fmt::format("QMP reply to no command: id {}", m->id)));
      if (auto kept = Keep({std::move(m->event), std::move(m->data)}); !kept) return tl::unexpected(kept.error());
    }
    if (!*filled) return {};
    deadline = Clock::now();  // after the first read, only what is there already
  }
}

std::deque<QmpEvent> QmpClient::TakeEvents() { return std::exchange(events_, {}); }

}  // namespace cmm::hv
