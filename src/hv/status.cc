#include "hv/status.h"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "core/size_text.h"

namespace cmm::hv {

using json = nlohmann::json;

namespace {

// -1 when the member has reported no stats yet.
int64_t StatsAgeMs(const MemberStats& s) {
  if (s.taken == MemberClock::time_point{}) return -1;
  return std::chrono::duration_cast<std::chrono::milliseconds>(MemberClock::now() - s.taken).count();
}

}  // namespace

std::string Condition(const MemberView& m) {
  if (!m.responsive) return "unresponsive";
  if (m.stats.taken == MemberClock::time_point{}) return "starting";
  const double to_go = BandsToGo(m);
  if (to_go > 1) return "inflating";
  if (to_go < -1) return "deflating";
  const Bytes usable = m.ram_bytes - std::min(m.ram_bytes, m.target_loaned_bytes);
  if (m.settings.min_bytes > Bytes(0) && usable <= BoundsOf(m.ram_bytes, m.settings).min) return "at its floor";
  return "at target";
}

std::string PressureText(const MemberStatus& m) {
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
  if (m.swapped_in_bytes > 0) add("swapped in " + FormatBytes(m.swapped_in_bytes));
  if (m.major_faults > 0) add(fmt::format("{} major faults", m.major_faults));
  if (m.reclaimed_bytes > 0) add("reclaimed " + FormatBytes(m.reclaimed_bytes));
  return out;
}

// The status is serialised: its byte counts are unsigned numbers.
std::string KindsText(const std::vector<MemberStatus>& members) {
  size_t vms = 0, domains = 0;
  for (const auto& m : members) {
    vms += m.kind == "vm";
    domains += m.kind == "domain";
  }
  const size_t partitions = members.size() - vms - domains;
  auto n = [](size_t k, const char* one) { return fmt::format("{} {}{}", k, one, k == 1 ? "" : "s"); };
  if (domains == 0) return n(partitions, "partition") + " and " + n(vms, "VM");
  return n(partitions, "partition") + ", " + n(vms, "VM") + " and " + n(domains, "domain");
}

HvStatus Status(Bytes pool_bytes, const Feasibility& f, const std::vector<MemberView>& members) {
  constexpr auto u = AsUnsigned<Bytes>;
  HvStatus out;
  out.pool_bytes = u(pool_bytes);
  out.floors_bytes = u(f.floors_bytes);
  out.shortfall_bytes = u(f.shortfall_bytes);
  out.giveback_reserve_bytes = u(f.giveback_reserve_bytes);
  Bytes backing, ram, demand;
  std::vector<NamedUse> uses;
  for (const auto& v : members) {
    uses.push_back({v.name, MemberUse(v.ram_bytes, v.loaned_bytes, v.stats)});
    demand += uses.back().used;
    backing += v.backing_bytes;
    ram += v.ram_bytes;
    out.partitions.push_back({v.name, std::string(KindName(v.kind)), u(v.ram_bytes), u(v.backing_bytes),
                              u(v.loaned_bytes), u(v.target_loaned_bytes), v.settings.weight, u(v.settings.min_bytes),
                              u(BoundsOf(v.ram_bytes, v.settings).max), u(v.stats.free_bytes), u(v.stats.used_bytes),
                              u(v.stats.cache_bytes), v.stats.oom_events, u(v.stats.swapped_in), v.stats.major_faults,
                              u(v.stats.reclaimed), StatsAgeMs(v.stats), v.responsive,
                              Condition(v), v.note, v.backing_source, u(v.own_bytes), v.pid, v.counts, v.uri});
  }
  out.backing_bytes = u(backing);
  out.ram_bytes = u(ram);
  out.demand_bytes = u(demand);
  // The floors first: when they cannot be met, nothing else can.
  out.problem = f.shortfall_bytes > Bytes(0) ? ShortfallMessage(f) : DemandMessage(pool_bytes, std::move(uses));
  return out;
}

json StatusJson(Bytes pool_bytes, const Feasibility& f, const std::vector<MemberView>& members,
                const std::vector<std::string>& notes) {
  HvStatus st = Status(pool_bytes, f, members);
  st.notes = notes;
  json out = st;
  if (st.problem.empty()) out.erase("problem");
  if (st.notes.empty()) out.erase("notes");
  return out;
}

json StatusJson(const Pool& pool) {
  return StatusJson(pool.pool_bytes(), pool.feasibility(), pool.Snapshot(), pool.notes());
}

json LiveJson(const Pool& pool, const PoolMonitor& monitor, int64_t now_ms, int64_t since_ms, uint64_t after_seq) {
  json t = json::array(), size = json::array(), backing = json::array(), loaned = json::array(),
       members = json::array();
  for (const PoolSample& s : monitor.SamplesSince(since_ms)) {
    t.push_back(s.unix_ms);
    size.push_back(s.pool_bytes);
    backing.push_back(s.backing_bytes);
    loaned.push_back(s.loaned_bytes);
    members.push_back(s.members);
  }
  json events = json::array();
  for (const PoolEvent& e : monitor.EventsAfter(after_seq)) {
    events.push_back({{"seq", e.seq}, {"t", e.unix_ms}, {"kind", e.kind}, {"member", e.member}, {"text", e.text}});
  }
  return {{"now_ms", now_ms},
          {"status", StatusJson(pool)},
          {"samples", {{"t", t}, {"pool", size}, {"backing", backing}, {"loaned", loaned}, {"members", members}}},
          {"events", events}};
}

}  // namespace cmm::hv
