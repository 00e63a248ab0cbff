#include "ctl/client.h"

#include <cerrno>

#include <fmt/format.h>

#include "ctl/unix_socket.h"

namespace cmm::ctl {

Result<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request,
                            std::chrono::milliseconds timeout) {
  const auto kTimeout = timeout;
  auto fd = Connect(socket_path);
  if (!fd) return tl::unexpected(fd.error());  // kUnavailable when nobody listens
  if (auto s = SendLine(fd->get(), request.dump(), kTimeout); !s) return Fail(ErrorCode::kIo, s.error());
  auto line = RecvLine(fd->get(), kTimeout);
  if (!line) return Fail(ErrorCode::kIo, line.error());
  try {
    auto reply = nlohmann::json::parse(*line);
    if (!reply.is_object() || !reply.contains("ok")) return Fail(ErrorCode::kProtocol, "the reply is not a control message");
    return reply;
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorCode::kProtocol, fmt::format("unreadable reply: {}", e.what()));
  }
}

}  // namespace cmm::ctl
