#include "hv/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

// Label values may hold any character but '\', '"' and newline need escapes.
std::string Escape(std::string_view v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string PrometheusText(Bytes pool_bytes, const Feasibility& feasibility, const std::vector<MemberView>& members,
                           const HcallStats::Snapshot& hcalls) {
  std::string out;
  Bytes backing, ram, demand;
  for (const auto& p : members) {
    backing += p.backing_bytes;
    ram += p.ram_bytes;
    demand += MemberUse(p.ram_bytes, p.loaned_bytes, p.stats);
  }
  Header(out, "cmm_pool_bytes", "gauge", "Host memory the partitions share.");
  out += fmt::format("cmm_pool_bytes {}\n", pool_bytes.value());
  Header(out, "cmm_pool_shortfall_bytes", "gauge",
         "How far the members' floors are above the pool: it cannot be met by this much (0: it can).");
  out += fmt::format("cmm_pool_shortfall_bytes {}\n", feasibility.shortfall_bytes.value());
  Header(out, "cmm_pool_giveback_reserve_bytes", "gauge",
         "Kept back from what is handed out, so that a guest taking memory back on OOM stays within the pool: the "
         "most taken back in one round of the last 300.");
  out += fmt::format("cmm_pool_giveback_reserve_bytes {}\n", feasibility.giveback_reserve_bytes.value());
  Header(out, "cmm_pool_demand_bytes", "gauge",
         "What the members use (usable memory less free and cache); above cmm_pool_bytes no policy can feed them "
         "all.");
  out += fmt::format("cmm_pool_demand_bytes {}\n", demand.value());
  Header(out, "cmm_pool_backing_bytes", "gauge", "Host memory backing all members' RAM now.");
  out += fmt::format("cmm_pool_backing_bytes {}\n", backing.value());
  Header(out, "cmm_pool_partition_ram_bytes", "gauge", "Sum of the members' RAM.");
  out += fmt::format("cmm_pool_partition_ram_bytes {}\n", ram.value());
  Header(out, "cmm_partitions", "gauge", "Members of the pool, by kind.");
  for (const MemberKind kind : {MemberKind::kPartition, MemberKind::kVm, MemberKind::kDomain}) {
    const auto n = std::count_if(members.begin(), members.end(), [kind](const MemberView& m) { return m.kind == kind; });
    out += fmt::format("cmm_partitions{{kind=\"{}\"}} {}\n", KindName(kind), n);
  }

  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*value)(const MemberView&);
  };
  static constexpr Gauge kGauges[] = {
      {"cmm_partition_ram_bytes", "gauge", "The partition's RAM (entitled memory).",
       [](const MemberView& p) { return p.ram_bytes.value(); }},
      {"cmm_partition_backing_bytes", "gauge", "Host memory backing the partition's RAM now.",
       [](const MemberView& p) { return p.backing_bytes.value(); }},
      {"cmm_partition_loaned_bytes", "gauge", "Memory the partition has loaned to the pool.",
       [](const MemberView& p) { return p.loaned_bytes.value(); }},
      {"cmm_partition_target_loaned_bytes", "gauge", "What the policy wants the partition to have loaned.",
       [](const MemberView& p) { return p.target_loaned_bytes.value(); }},
      {"cmm_partition_weight", "gauge", "The partition's memory weight (0-255).",
       [](const MemberView& p) { return int64_t{p.settings.weight}; }},
      {"cmm_partition_free_bytes", "gauge", "Free memory the partition reported last.",
       [](const MemberView& p) { return p.stats.free_bytes.value(); }},
      {"cmm_partition_oom_events_total", "counter", "OOM events the partition reported.",
       [](const MemberView& p) { return static_cast<int64_t>(p.stats.oom_events); }},
      {"cmm_partition_swapped_in_bytes_total", "counter", "Memory the guest swapped back in, as it reported last.",
       [](const MemberView& p) { return p.stats.swapped_in.value(); }},
      {"cmm_partition_major_faults_total", "counter", "Major page faults of the guest, as it reported last.",
       [](const MemberView& p) { return static_cast<int64_t>(std::min<uint64_t>(p.stats.major_faults, INT64_MAX)); }},
      {"cmm_partition_reclaimed_bytes_total", "counter",
       "Memory the partition's allocations had to reclaim first (direct reclaim), as it reported last.",
       [](const MemberView& p) { return p.stats.reclaimed.value(); }},
      {"cmm_partition_pages_loaned_total", "counter", "CMO pages the hypervisor set loaned (and punched).",
       [](const MemberView& p) { return static_cast<int64_t>(p.counts.pages_loaned); }},
      {"cmm_partition_pages_returned_total", "counter", "CMO pages the hypervisor set active again.",
       [](const MemberView& p) { return static_cast<int64_t>(p.counts.pages_returned); }},
      {"cmm_partition_responsive", "gauge", "1 while the member follows its target and its stats are fresh, else 0.",
       [](const MemberView& p) { return int64_t{p.responsive}; }},
      {"cmm_partition_own_bytes", "gauge", "Memory of the member's process outside its guest RAM (QEMU's own).",
       [](const MemberView& p) { return p.own_bytes.value(); }},
  };
  for (const Gauge& g : kGauges) {
    Header(out, g.name, g.type, g.help);
    for (const auto& p : members) {
      out += fmt::format("{}{{partition=\"{}\",kind=\"{}\"}} {}\n", g.name, Escape(p.name), KindName(p.kind), g.value(p));
    }
  }

  Header(out, "cmm_hcalls_total", "counter", "Hcalls answered, by call and PAPR return code.");
  for (const auto& [key, n] : hcalls.calls) {
    out += fmt::format("cmm_hcalls_total{{call=\"{}\",rc=\"{}\"}} {}\n", HcallName(key.first),
                       papr::RcName(key.second), n);
  }
  Header(out, "cmm_hcall_duration_seconds", "histogram", "Time from an hcall's packet in to its reply out.");
  for (const auto& [call, h] : hcalls.latency) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      cumulative += h.counts[i];
      out += fmt::format("cmm_hcall_duration_seconds_bucket{{call=\"{}\",le=\"{}\"}} {}\n", HcallName(call),
                         kLatencyBuckets[i], cumulative);
    }
    out += fmt::format("cmm_hcall_duration_seconds_bucket{{call=\"{}\",le=\"+Inf\"}} {}\n", HcallName(call), h.total);
    out += fmt::format("cmm_hcall_duration_seconds_sum{{call=\"{}\"}} {}\n", HcallName(call), h.sum_seconds);
    out += fmt::format("cmm_hcall_duration_seconds_count{{call=\"{}\"}} {}\n", HcallName(call), h.total);
  }
  return out;
}

}  // namespace cmm::hv
