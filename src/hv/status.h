// The pool as one typed status, serialised in one place (the field lists
// below): what `cmm hv status --json`, `/status`, the web page and `cmm hv
// watch` all show; the CLI and the demo read it back typed.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pool/monitor.h"
#include "pool/pool.h"

namespace cmm::hv {

struct MemberStatus {
  std::string name;
  std::string kind;  // partition, vm
  uint64_t ram_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t target_loaned_bytes = 0;
  unsigned weight = 0;
  uint64_t min_bytes = 0;
  uint64_t max_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t cache_bytes = 0;
  uint64_t oom_events = 0;
  // Pressure the guest reports (pool/member.h), counted since it started.
  uint64_t swapped_in_bytes = 0;
  uint64_t major_faults = 0;
  uint64_t reclaimed_bytes = 0;
  int64_t stats_age_ms = -1;  // -1: no stats yet
  bool responsive = true;
  std::string condition;  // Condition()
  std::string note;
  std::string backing_source;
  uint64_t own_bytes = 0;
  int pid = 0;
  HcallCounts hcalls;
  std::string uri;  // a domain's libvirt connection
};

struct HvStatus {
  uint64_t pool_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t ram_bytes = 0;
  uint64_t floors_bytes = 0;
  uint64_t shortfall_bytes = 0;
  uint64_t demand_bytes = 0;  // what the members use (see pool/demand_report.h)
  uint64_t giveback_reserve_bytes = 0;  // kept back for OOM give-backs
  std::string problem;  // empty: none (and left out of the JSON)
  std::vector<MemberStatus> partitions;
  std::vector<std::string> notes;  // the pool's standing remarks (left out of the JSON when none)
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HcallCounts, get_mpp, page_init, page_init_failed, batches, releases,
                                                pages_loaned, pages_returned)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MemberStatus, name, kind, ram_bytes, backing_bytes, loaned_bytes,
                                                target_loaned_bytes, weight, min_bytes, max_bytes, free_bytes,
                                                used_bytes, cache_bytes, oom_events, swapped_in_bytes, major_faults,
                                                reclaimed_bytes, stats_age_ms, responsive, condition, note,
                                                backing_source, own_bytes, pid, hcalls, uri)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(HvStatus, pool_bytes, backing_bytes, ram_bytes, floors_bytes,
                                                shortfall_bytes, demand_bytes, giveback_reserve_bytes, problem,
                                                partitions, notes)

// One word for how a member stands, for the status column: "unresponsive",
// "starting" (no stats yet), "at its floor", "inflating", "deflating" or
// "at target". A member is at its target within the policy's settle band.
std::string Condition(const MemberView& m);

// The pressure a member's guest reported, for its status notes: "swapped
// in 8 MiB, 300 major faults, reclaimed 12 MiB", the counts it has only;
// empty when it reported none.
std::string PressureText(const MemberStatus& m);

// "2 partitions and 1 VM", or with domains "0 partitions, 1 VM and 2 domains".
std::string KindsText(const std::vector<MemberStatus>& members);

HvStatus Status(Bytes pool_bytes, const Feasibility& feasibility, const std::vector<MemberView>& members);
// The same as JSON, without "problem" or "notes" when there are none.
nlohmann::json StatusJson(Bytes pool_bytes, const Feasibility& feasibility, const std::vector<MemberView>& members,
                          const std::vector<std::string>& notes = {});
nlohmann::json StatusJson(const Pool& pool);

// What a live view asks each second: {"status": StatusJson, "now_ms",
// "samples": {"t": [unix ms], "pool": [...], "backing": [...], "loaned":
// [...], "members": [...]} since `since_ms`, "events": [{"seq", "t", "kind", "member",
// "text"}] after `after_seq`}.
nlohmann::json LiveJson(const Pool& pool, const PoolMonitor& monitor, int64_t now_ms, int64_t since_ms,
                        uint64_t after_seq);

}  // namespace cmm::hv
