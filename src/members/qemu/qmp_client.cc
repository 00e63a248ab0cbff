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

namespace cmm::hv {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A message longer than this is not QMP.
constexpr size_t kMaxMessage = 4 << 20;

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
  std::unique_ptr<QmpClient> c(new QmpClient(fd));
  const auto deadline = Clock::now() + timeout;
  auto greeting = c->Next(deadline);
  if (!greeting) return tl::unexpected(fmt::format("QMP at {}: no greeting: {}", path, greeting.error().message));
  if (!greeting->contains("QMP")) return tl::unexpected(fmt::format("QMP at {}: not a QMP greeting: {}", path, greeting->dump()));
  if (const auto* v = (*greeting)["QMP"].contains("version") ? &(*greeting)["QMP"]["version"]["qemu"] : nullptr;
      v != nullptr && v->is_object()) {
    c->version_ = fmt::format("{}.{}.{}", v->value("major", 0), v->value("minor", 0), v->value("micro", 0));
  }
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
  buffer_.append(chunk, static_cast<size_t>(got));
  return true;
}

tl::expected<std::optional<json>, QmpError> QmpClient::TakeMessage() {
  // QEMU writes one object per line, or spread over lines when its monitor
  // is pretty-printed: a message ends where its outermost brace closes.
  const size_t begin = buffer_.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    buffer_.clear();
    return std::nullopt;
  }
  if (buffer_[begin] != '{') {
    const size_t eol = buffer_.find_first_of("\r\n", begin);
    return tl::unexpected(Lose(fmt::format("QMP sent something that is not a JSON object: {:.80}",
                                           buffer_.substr(begin, eol == std::string::npos ? eol : eol - begin))));
  }
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = begin; i < buffer_.size(); ++i) {
    const char ch = buffer_[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
      continue;
    }
    if (ch == '"') in_string = true;
    if (ch == '{' || ch == '[') ++depth;
    if ((ch == '}' || ch == ']') && --depth == 0) {
      const std::string text = buffer_.substr(begin, i + 1 - begin);
      buffer_.erase(0, i + 1);
      json m = json::parse(text, nullptr, false);
      if (m.is_discarded()) {
        return tl::unexpected(Lose(fmt::format("QMP sent something that is not a JSON object: {:.80}", text)));
      }
      return m;
    }
  }
  if (buffer_.size() > kMaxMessage) return tl::unexpected(Lose("QMP sent a message of over 4 MiB"));
  return std::nullopt;
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
  const std::string text = request.dump() + "\n";
  for (size_t sent = 0; sent < text.size();) {
    const ssize_t n = send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 && (errno == EPIPE || errno == ECONNRESET)) return tl::unexpected(Lose("QEMU closed the QMP connection"));
    if (n <= 0) return tl::unexpected(Lose(fmt::format("QMP write: {}", std::strerror(errno))));
    sent += static_cast<size_t>(n);
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto m = Next(deadline);
    if (!m) return tl::unexpected(m.error());
    if (m->contains("event")) {
      events_.push_back(std::move(*m));
      continue;
    }
    if (!m->contains("id") || (*m)["id"] != id) {
      // A reply to no command of ours: the stream is out of step.
      return tl::unexpected(Lose(fmt::format("QMP reply out of order: {:.80}", m->dump())));
    }
    if (m->contains("return")) return std::move((*m)["return"]);
    if (m->contains("error") && (*m)["error"].is_object()) {
      const json& e = (*m)["error"];
      return tl::unexpected(QmpError{false, e.value("class", "GenericError"),
                                     fmt::format("{}: {}", command, e.value("desc", "refused"))});
    }
    return tl::unexpected(Lose(fmt::format("QMP reply with neither return nor error: {:.80}", m->dump())));
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
      if (!(*line)->contains("event")) return tl::unexpected(Lose(fmt::format("QMP reply to no command: {:.80}", (*line)->dump())));
      events_.push_back(std::move(**line));
    }
    if (!*filled) return {};
    deadline = Clock::now();  // after the first read, only what is there already
  }
}

std::deque<json> QmpClient::TakeEvents() { return std::exchange(events_, {}); }

}  // namespace cmm::hv
