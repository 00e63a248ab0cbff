#include "ctl/client.h"

#include <cerrno>

#include <fmt/format.h>

#include "ctl/unix_socket.h"

namespace cmm::ctl {

tl::expected<nlohmann::json, CallError> Call(const std::string& socket_path, const nlohmann::json& request) {
  constexpr auto kTimeout = std::chrono::seconds(5);
  auto fd = Connect(socket_path);
  if (!fd) {
    return tl::unexpected(CallError{fd.error().code == ErrorCode::kUnavailable, fd.error().message});
  }
  if (auto s = SendLine(fd->get(), request.dump(), kTimeout); !s) {
    return tl::unexpected(CallError{false, s.error()});
  }
  auto line = RecvLine(fd->get(), kTimeout);
  if (!line) return tl::unexpected(CallError{false, line.error()});
  try {
    auto reply = nlohmann::json::parse(*line);
    if (!reply.is_object() || !reply.contains("ok")) {
      return tl::unexpected(CallError{false, "the reply is not a control message"});
    }
    return reply;
  } catch (const nlohmann::json::exception& e) {
    return tl::unexpected(CallError{false, fmt::format("unreadable reply: {}", e.what())});
  }
}

}  // namespace cmm::ctl
