#include "cli/hv_call.h"

#include <fmt/format.h>

#include "cli/common.h"
#include "ctl/client.h"
#include "ctl/server.h"

namespace cmm::cli {

void PutSize(nlohmann::json& request, const char* key, const char* flag, const std::string& text, const char* example) {
  if (text.empty()) return;
  const auto bytes = ParseSize(text);
  if (!bytes) throw UserError(fmt::format("{} {}: not a size; try {}", flag, text, example), kExitUsage);
  request[key] = *bytes;
}

nlohmann::json CallHypervisor(const std::string& control, const nlohmann::json& request, const std::string& what,
                              std::chrono::milliseconds timeout) {
  auto reply = ctl::Call(control, request, timeout);
  if (!reply) {
    throw UserError(fmt::format("no hypervisor answers at {}: {}; start one with `cmm hv --pool SIZE`", control,
                                reply.error().message));
  }
  if (!(*reply).value("ok", false)) {
    throw UserError(fmt::format("{}: {} ({})", what, (*reply).value("message", "refused"),
                                ctl::ErrnoName((*reply).value("errno", 0))));
  }
  return *reply;
}

}  // namespace cmm::cli
