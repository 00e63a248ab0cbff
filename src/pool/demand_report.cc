#include "pool/demand_report.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/size_text.h"

namespace cmm::hv {

Bytes MemberUse(Bytes ram, Bytes loaned, const MemberStats& stats) {
  if (stats.taken == MemberClock::time_point{}) return Bytes(0);
  const Bytes usable = std::max(ram - std::clamp(loaned, Bytes(0), ram), Bytes(0));
  return std::max(usable - stats.free_bytes - stats.cache_bytes, Bytes(0));
}

std::string DemandMessage(Bytes pool, std::vector<NamedUse> uses) {
  Bytes total;
  for (const auto& u : uses) total += u.used;
  if (total <= pool) return "";
  std::sort(uses.begin(), uses.end(), [](const NamedUse& a, const NamedUse& b) {
    return a.used != b.used ? a.used > b.used : a.name < b.name;
  });
  constexpr size_t kNamed = 5;
  std::string who;
  for (size_t i = 0; i < uses.size() && i < kNamed; ++i) {
    who += fmt::format("{}{} {}", i == 0 ? "" : ", ", uses[i].name, FormatBytes(uses[i].used));
  }
  if (uses.size() > kNamed) who += fmt::format(" and {} more", uses.size() - kNamed);
  return fmt::format("members use {}, the pool is {}: {} short; {}", FormatBytes(total), FormatBytes(pool),
                     FormatBytes(total - pool), who);
}

}  // namespace cmm::hv
