#include "members/virtio/guest_cmdline.h"

#include <cstdint>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace cmm::vm {

std::string Base64(const std::string& in) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out += kDigits[(v >> 18) & 63];
    out += kDigits[(v >> 12) & 63];
    out += i + 1 < in.size() ? kDigits[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kDigits[v & 63] : '=';
  }
  return out;
}

Result<std::string> GuestCmdline(std::string base, const std::vector<std::string>& workloads,
                                 const std::vector<GuestFile>& files) {
  auto add = [&base](const std::string& word) { base += (base.empty() ? "" : " ") + word; };
  if (!workloads.empty()) {
    for (const std::string& w : workloads) {
      if (w.empty() || w.find_first_of(" ,") != std::string::npos) {
        return Fail(ErrorCode::kInvalid, fmt::format("--workload {}: a spec has no spaces or commas", w));
      }
    }
    add(fmt::format("cmm.workload={}", fmt::join(workloads, ",")));
  }
  for (const GuestFile& f : files) {
    if (f.name.empty() || f.name.find_first_of("/ =") != std::string::npos) {
      return Fail(ErrorCode::kInvalid, fmt::format("a guest file cannot be named '{}'", f.name));
    }
    add(fmt::format("cmm.file.{}={}", f.name, Base64(f.text)));
  }
  if (base.size() > kMaxGuestCmdline) {
    return Fail(ErrorCode::kInvalid, fmt::format("the guest's command line would be {} bytes (the kernel keeps 2048): "
                                                 "fewer or smaller --file and --workload",
                                                 base.size()));
  }
  return base;
}

}  // namespace cmm::vm
