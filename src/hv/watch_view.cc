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

std::string Percent(uint64_t part, uint64_t whole) {
  return whole ? fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "-";
}

// The sort key names a member's field as serialised, so any field sorts.
std::vector<MemberStatus> Sorted(const std::vector<MemberStatus>& members, const WatchSort& sort) {
  std::vector<std::pair<json, const MemberStatus*>> rows;
  for (const auto& m : members) {
    const json j = m;
    rows.emplace_back(j.contains(sort.key) ? j[sort.key] : j["name"], &m);
  }
  std::stable_sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    if (a.first == b.first) return a.second->name < b.second->name;
    return sort.largest_first ? b.first < a.first : a.first < b.first;
  });
  std::vector<MemberStatus> out;
  for (const auto& [_, m] : rows) out.push_back(*m);
  return out;
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

std::string WatchFrame(const HvStatus& status, const std::vector<std::string>& events, const WatchSort& sort,
                       int width, std::string_view clock) {
  const uint64_t pool = status.pool_bytes;
  const uint64_t backing = status.backing_bytes;
  const std::vector<MemberStatus>& members = status.partitions;
  std::string out;
  std::string kinds = KindsText(members);
  if (const size_t and_at = kinds.rfind(" and "); and_at != std::string::npos) kinds.replace(and_at, 5, ", ");
  const std::string title = fmt::format("cmm hv watch: pool {}, {}", FormatBytes(pool), kinds);
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
  if (!status.problem.empty()) out += Fit(status.problem, width);
  for (const std::string& note : status.notes) out += Fit("note: " + note, width);
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
  for (const MemberStatus& p : Sorted(members, sort)) {
    std::string state = p.condition;
    if (!p.note.empty()) state += ": " + p.note;
    out += Fit(row(p.name, p.kind,
                   {FormatBytes(p.ram_bytes), FormatBytes(p.used_bytes), FormatBytes(p.cache_bytes),
                    FormatBytes(p.free_bytes), FormatBytes(p.loaned_bytes), FormatBytes(p.target_loaned_bytes),
                    FormatBytes(p.backing_bytes), std::to_string(p.weight)},
                   std::to_string(p.oom_events), state),
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

std::string WatchLine(const HvStatus& status, std::string_view clock) {
  const uint64_t pool = status.pool_bytes;
  const uint64_t backing = status.backing_bytes;
  uint64_t loaned = 0, ooms = 0;
  std::string rows;
  for (const MemberStatus& p : status.partitions) {
    loaned += p.loaned_bytes;
    ooms += p.oom_events;
    rows += fmt::format(" | {} {} {}", p.name, FormatBytes(p.backing_bytes), p.condition);
  }
  std::string line = fmt::format("{} pool {}, backing {} ({}){}, loaned {}, {} member{}, {} OOM event{}", clock,
                                 FormatBytes(pool), FormatBytes(backing), Percent(backing, pool),
                                 backing > pool ? " OVER" : "", FormatBytes(loaned), status.partitions.size(),
                                 status.partitions.size() == 1 ? "" : "s", ooms, ooms == 1 ? "" : "s");
  if (!status.problem.empty()) line += " | " + status.problem;
  for (const std::string& note : status.notes) line += " | note: " + note;
  return line + rows;
}

}  // namespace cmm::hv
