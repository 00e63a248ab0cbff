// The one rule for a partition's or VM's name, wherever one arrives (the
// command line, a registration on the wire, a VM attach): it names files
// (NAME.sock) and is passed as an argument, so it is 1-64 of letters,
// digits, '_', '.', '-', and starts with neither '.' nor '-'.
#pragma once

#include <cstddef>
#include <string_view>

namespace cmm {

inline constexpr size_t kMaxNameLength = 64;

constexpr bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.' || name[0] == '-') return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

inline constexpr std::string_view kNameRule = "1-64 letters, digits, '_', '.', '-', not starting with '.' or '-'";

}  // namespace cmm
