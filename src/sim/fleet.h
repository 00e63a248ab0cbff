// cmm sim's engine: the hypervisor's own Pool and Rebalancer over
// simulated members, on a simulated clock, and what it measures.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/peers.h"
#include "sim/trace.h"

namespace cmm::sim {

struct SimOptions {
  uint32_t seconds = 3600;
  uint64_t pool_bytes = 0;  // 0: the trace's, else 60% of the members' RAM
  uint64_t seed = 1;
  PolicyKind policy = PolicyKind::kCmm;  // whose rules decide the targets
  double headroom = 0;  // cmm's headroom (PolicyConfig::headroom); 0: its default
  double peak_window_s = -1;  // cmm's memory of peaks (PolicyConfig::peak_window_s); < 0: its default
  double growth_lead_s = -1;  // how far ahead cmm follows growing use (PolicyConfig::growth_lead_s); < 0: its default
  // Called every simulated minute with the seconds done (live progress).
  std::function<void(uint32_t done_s)> progress;
};

struct WeightBand {
  unsigned lo = 0, hi = 0;
  uint32_t members = 0;
  double loaned_share = 0;  // mean share of RAM loaned
};

struct SimReport {
  PolicyKind policy = PolicyKind::kCmm;
  double headroom = 0;  // the one it ran with
  uint32_t members = 0;
  uint32_t seconds = 0;
  uint32_t period_s = 1;
  uint64_t pool_bytes = 0;  // at the start
  uint64_t ram_bytes = 0;   // of all members
  // Seconds the members' entitlements were over the pool, by cause.
  double over_policy_s = 0;     // the policy's own: must be 0
  double over_oom_s = 0;        // after members took memory back on OOM
  uint64_t oom_overs = 0;       // times an OOM give-back took the pool over
  double back_p50_s = 0, back_p99_s = 0;  // time from then to back within the pool
  double over_shrink_s = 0;     // after the pool shrank, until met again
  double over_infeasible_s = 0; // the floors alone were above the pool
  // Seconds the members' entitlements were over the pool by a cause a
  // policy answers for (its own, an OOM give-back, a shrink): the
  // comparison with the peers counts these.
  double over_total_s() const { return over_policy_s + over_oom_s + over_shrink_s; }
  double use_over_s = 0;        // host memory behind the members was above the pool
  uint64_t peak_use_bytes = 0;  // host memory backing the members
  double mean_use_bytes = 0;
  uint64_t oom_events = 0;
  // Members that met their OOM path at least once. Each one's first event
  // came before any of its peaks was seen: a policy that learns peaks from
  // use meets at least that many on a fleet of fresh members whose bursts
  // outgrow their headroom.
  uint64_t oom_members = 0;
  std::array<uint64_t, kShapeKinds> oom_by_shape{};  // by the member's workload (ShapeKind)
  uint32_t join_wait_max_s = 0;  // longest a member waited for room to join
  uint32_t still_waiting = 0;    // members still waiting at the end
  uint64_t bursts = 0;
  double burst_p50_s = 0, burst_p99_s = 0;  // time from short of memory to fed
  std::vector<WeightBand> fairness;
  double mean_unballooned_bytes = 0;  // what the same fleet would back without balloons
  double mean_saved_bytes = 0;
  double churn_per_member_hour = 0;  // target changes
  uint32_t churn_max = 0;
  double wall_s = 0;
  double rebalance_mean_us = 0, rebalance_max_us = 0;
};

SimReport RunSim(const Trace& trace, const SimOptions& options);

}  // namespace cmm::sim
