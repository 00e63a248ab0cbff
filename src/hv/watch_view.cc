#include "hv/watch_view.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/size_text.h"

namespace cmm::hv {

using json = nlohmann::json;

const std::vector<SortKey>& SortKeys() {
  static const std::vector<SortKey> keys = {
      {'n', "name", "name"},       {'r', "ram_bytes", "RAM"},         {'u', "used_bytes", "used"},
      {'f', "free_bytes", "free"}, {'l', "loaned_bytes", "loaned"},   {'b', "backing_bytes", "backing"},
      {'w', "weight", "weight"},   {'o', "oom_events", "OOM events"}};
  return keys;
}

const SortKey* FindSortKey(char key) {
  for (const auto& k : SortKeys()) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

WatchSort SortBy(const SortKey& k) { return {k.field, std::string_view(k.field) != "name"}; }

const SortKey* FindSortLabel(std::string_view label) {
  for (const auto& k : SortKeys()) {
    if (label == k.label || label == k.field) return &k;
  }
  return nullptr;
}

namespace {

std::string Bytes(const json& v) { return FormatBytes(v.is_number_unsigned() ? v.get<uint64_t>() : 0); }

std::string Percent(uint64_t part, uint64_t whole) {
  return whole ? fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "-";
}

std::vector<json> Sorted(const json& members, const WatchSort& sort) {
  std::vector<json> rows(members.begin(), members.end());
  std::stable_sort(rows.begin(), rows.end(), [&](const json& a, const json& b) {
    const json& x = a.contains(sort.key) ? a[sort.key] : a["name"];
    const json& y = b.contains(sort.key) ? b[sort.key] : b["name"];
    if (x == y) return a["name"] < b["name"];
    return sort.largest_first ? y < x : x < y;
  });
  return rows;
}

// "287.2 MiB" -> "287.2M": sizes in 7 columns for a narrow terminal.
std::string Short(std::string size) {
  for (const char* unit : {" KiB", " MiB", " GiB", " TiB", " B"}) {
    const size_t at = size.find(unit);
    if (at != std::string::npos) return size.substr(0, at) + unit[1];
  }
  return size;
}

std::string Fit(std::string line, int width) {
  if (width > 0 && line.size() > static_cast<size_t>(width)) line.resize(static_cast<size_t>(width));
  return line + "\n";
}

}  // namespace

std::string WatchFrame(const json& status, const std::vector<std::string>& events, const WatchSort& sort, int width,
                       std::string_view clock) {
  const uint64_t pool = status.value("pool_bytes", uint64_t{0});
  const uint64_t backing = status.value("backing_bytes", uint64_t{0});
  const json& members = status["partitions"];
  size_t vms = 0;
  for (const auto& p : members) vms += p.value("kind", "") == "vm";
  std::string out;
  const std::string title = fmt::format("cmm hv watch: pool {}, {} partition{}, {} VM{}", FormatBytes(pool),
                                        members.size() - vms, members.size() - vms == 1 ? "" : "s", vms,
                                        vms == 1 ? "" : "s");
  out += Fit(fmt::format("{:<{}}{}", title, std::max<int>(static_cast<int>(title.size()) + 2, width - 8), clock),
             width);
  const std::string figures = fmt::format(" {} of {} ({}){}", FormatBytes(backing), FormatBytes(pool),
                                          Percent(backing, pool), backing > pool ? " OVER" : "");
  const int bar = std::max(10, width - static_cast<int>(figures.size()) - 7);
  const double share = pool ? static_cast<double>(backing) / static_cast<double>(pool) : 0;
  const int filled = std::clamp(static_cast<int>(share * bar + 0.5), 0, bar);
  out += Fit(fmt::format("pool [{}{}]{}", std::string(static_cast<size_t>(filled), '#'),
                         std::string(static_cast<size_t>(bar - filled), '.'), figures),
             width);
  if (status.contains("problem")) out += Fit(status["problem"].get<std::string>(), width);
  out += "\n";
  // Under 120 columns the view drops the cache, target and weight columns
  // and shortens the kind, so that a row fits 80.
  const bool wide = width >= 120;
  auto row = [wide](const std::string& name, const std::string& kind, const std::vector<std::string>& n,
                    const std::string& ooms, const std::string& state) {
    if (wide) {
      return fmt::format("{:<14} {:<9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>5}  {}", name, kind, n[0],
                         n[1], n[2], n[3], n[4], n[5], n[6], n[7], ooms, state);
    }
    return fmt::format("{:<10} {:<4} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5}  {}", name, kind.substr(0, 4), Short(n[0]),
                       Short(n[1]), Short(n[3]), Short(n[4]), Short(n[6]), ooms, state);
  };
  out += Fit(row("NAME", "KIND", {"RAM", "USED", "CACHE", "FREE", "LOANED", "TARGET", "BACKING", "WEIGHT"}, "OOMS",
                 "STATUS"),
             width);
  for (const json& p : Sorted(members, sort)) {
    std::string state = p.value("condition", "");
    if (const std::string note = p.value("note", ""); !note.empty()) state += ": " + note;
    out += Fit(row(p.value("name", ""), p.value("kind", ""),
                   {Bytes(p["ram_bytes"]), Bytes(p["used_bytes"]), Bytes(p["cache_bytes"]), Bytes(p["free_bytes"]),
                    Bytes(p["loaned_bytes"]), Bytes(p["target_loaned_bytes"]), Bytes(p["backing_bytes"]),
                    std::to_string(p.value("weight", 0))},
                   std::to_string(p.value("oom_events", uint64_t{0})), state),
               width);
  }
  if (members.empty()) out += "(no members yet)\n";
  out += "\n";
  const size_t shown = std::min<size_t>(events.size(), 5);
  for (size_t i = events.size() - shown; i < events.size(); ++i) out += Fit(events[i], width);
  if (events.empty()) out += "(no events yet)\n";
  out += "\n";
  const SortKey* k = FindSortLabel(sort.key);
  std::string keys;
  for (const auto& s : SortKeys()) keys += s.key;
  out += Fit(fmt::format("sorted by {}{} | keys {} sort, q quits", k ? k->label : sort.key,
                         sort.largest_first ? ", largest first" : "", keys),
             width);
  return out;
}

std::string WatchLine(const json& status, std::string_view clock) {
  const uint64_t pool = status.value("pool_bytes", uint64_t{0});
  const uint64_t backing = status.value("backing_bytes", uint64_t{0});
  uint64_t loaned = 0, ooms = 0;
  std::string rows;
  for (const json& p : status["partitions"]) {
    loaned += p.value("loaned_bytes", uint64_t{0});
    ooms += p.value("oom_events", uint64_t{0});
    rows += fmt::format(" | {} {} {}", p.value("name", ""), Bytes(p["backing_bytes"]), p.value("condition", ""));
  }
  std::string line = fmt::format("{} pool {}, backing {} ({}){}, loaned {}, {} member{}, {} OOM event{}", clock,
                                 FormatBytes(pool), FormatBytes(backing), Percent(backing, pool),
                                 backing > pool ? " OVER" : "", FormatBytes(loaned), status["partitions"].size(),
                                 status["partitions"].size() == 1 ? "" : "s", ooms, ooms == 1 ? "" : "s");
  if (status.contains("problem")) line += " | " + status["problem"].get<std::string>();
  return line + rows;
}

}  // namespace cmm::hv
