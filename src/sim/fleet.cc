#include "sim/fleet.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "pool/pool.h"
#include "pool/rebalancer.h"

namespace cmm::sim {

namespace {

using Clock = std::chrono::steady_clock;

// The OOM give-backs of the last periods, so that time over the pool is
// put down to them only while their recovery is due (within 2 periods).
struct RecentOom {
  static constexpr size_t kWindow = 3;
  uint64_t given[kWindow] = {};
  size_t at = 0;
  void Push(uint64_t bytes) {
    at = (at + 1) % kWindow;
    given[at] = bytes;
  }
  uint64_t Sum() const { return given[0] + given[1] + given[2]; }
};

double Percentile(const std::vector<uint64_t>& histogram, double p, uint64_t total) {
  if (total == 0) return 0;
  const auto want = static_cast<uint64_t>(p * static_cast<double>(total - 1));
  uint64_t seen = 0;
  for (size_t i = 0; i < histogram.size(); ++i) {
    seen += histogram[i];
    if (seen > want) return static_cast<double>(i);
  }
  return static_cast<double>(histogram.size() - 1);
}

// A member's own counters go into the report when it leaves (or the run
// ends): OOM events, target changes, the most changes of any one member.
void CountOnLeaving(const SimMember& m, ShapeKind kind, SimReport& r, uint64_t& target_changes) {
  r.oom_events += m.oom_events();
  r.oom_members += m.oom_events() > 0 ? 1 : 0;
  r.oom_by_shape.at(static_cast<size_t>(kind)) += m.oom_events();
  target_changes += m.target_changes();
  r.churn_max = std::max(r.churn_max, m.target_changes());
}

}  // namespace

SimReport RunSim(const Trace& trace, const SimOptions& options) {
  const auto started = Clock::now();
  SimReport r;
  r.policy = options.policy;
  r.members = static_cast<uint32_t>(trace.members.size());
  r.seconds = options.seconds;
  r.period_s = trace.period_s;
  for (const auto& m : trace.members) r.ram_bytes += m.ram_bytes;
  uint64_t pool_now = options.pool_bytes != 0 ? options.pool_bytes
                      : trace.pool_bytes != 0 ? trace.pool_bytes
                                              : r.ram_bytes / 10 * 6;
  r.pool_bytes = pool_now;

  hv::PoolOptions po;
  po.pool_bytes = FromUnsigned<Bytes>(pool_now);
  po.sizer = [&pool_now](Bytes) { return FromUnsigned<Bytes>(pool_now); };
  po.decide = MakePolicy(options.policy, trace.period_s);
  if (options.headroom > 0) po.policy.headroom = options.headroom;
  if (options.peak_window_s >= 0) po.policy.peak_window_s = options.peak_window_s;
  if (options.growth_lead_s >= 0) po.policy.growth_lead_s = options.growth_lead_s;
  r.headroom = po.policy.headroom;
  hv::Pool pool(po);
  const double low_free = po.policy.low_free;
  hv::Rebalancer rebalancer(pool, std::chrono::seconds(trace.period_s), hv::Rebalancer::Manual{});

  const size_t n = trace.members.size();
  std::vector<std::shared_ptr<SimMember>> members(n);
  std::vector<uint32_t> short_since(n, 0);  // 0: fed; else the second it went short, plus one
  std::vector<uint8_t> queued(n, 0);
  std::vector<size_t> waiting;  // due to join, waiting for room
  std::vector<double> loaned_share(n, 0.0);
  std::vector<uint32_t> present_periods(n, 0);
  std::vector<uint64_t> burst_hist(options.seconds / trace.period_s + 2, 0);
  std::vector<uint64_t> back_hist(burst_hist.size(), 0);  // periods over the pool after an OOM give-back
  uint32_t oom_over_since = 0;  // 0: within the pool; else the second it went over, plus one
  std::vector<PoolChange> changes = trace.pool_changes;
  std::sort(changes.begin(), changes.end(), [](auto& a, auto& b) { return a.at_s < b.at_s; });
  size_t next_change = 0;
  RecentOom recent_oom;
  bool shrink_pending = false;  // the pool shrank and has not been met since
  double use_sum = 0, unballooned_sum = 0;
  uint64_t periods = 0;
  double rebalance_total_us = 0;
  uint64_t left_target_changes = 0;  // of members that have left
  const uint32_t dt = trace.period_s;

  for (uint32_t t = 0; t < options.seconds; t += dt) {
    while (next_change < changes.size() && changes[next_change].at_s <= t) {
      const uint64_t to = changes[next_change++].pool_bytes;
      if (to < pool_now) shrink_pending = true;
      pool_now = to;
    }
    // Joins and leaves. A member joins once the pool has room for its
    // floor; until then its floor is reserved, so the others make room.
    for (size_t i = 0; i < n; ++i) {
      const MemberSpec& spec = trace.members[i];
      const bool due = spec.join_s <= t && (spec.leave_s == 0 || spec.leave_s > t);
      if (!members[i] && due && !queued[i]) {
        queued[i] = 1;
        waiting.push_back(i);
      } else if (members[i] && !due) {
        pool.Remove(*members[i]);
        CountOnLeaving(*members[i], spec.shape.kind, r, left_target_changes);
        members[i].reset();
      }
    }
    uint64_t reserve = 0;
    std::vector<size_t> still;
    for (const size_t i : waiting) {
      const MemberSpec& spec = trace.members[i];
      if (spec.leave_s != 0 && spec.leave_s <= t) continue;  // left before it could join
      if (reserve == 0 && pool.HasRoomFor(FromUnsigned<Bytes>(spec.ram_bytes), spec.settings)) {
        members[i] = std::make_shared<SimMember>(spec, options.seed * 0x100000001b3ULL + i);
        (void)pool.Add(members[i], spec.settings);
        r.join_wait_max_s = std::max(r.join_wait_max_s, t - spec.join_s);
      } else {
        still.push_back(i);  // first come, first in
        reserve += std::min(AsUnsigned(spec.settings.min_bytes), spec.ram_bytes);
      }
    }
    waiting.swap(still);
    pool.Reserve(FromUnsigned<Bytes>(reserve));
    // The members live one period, then the rebalancer's round.
    uint64_t use = 0, unballooned = 0, entitled = 0, oom_given = 0;
    for (size_t i = 0; i < n; ++i) {
      SimMember* m = members[i].get();
      if (m == nullptr) continue;
      m->Step(t + dt, dt);
      use += m->backing();
      unballooned += m->backing_unballooned();
      entitled += m->ram() - std::min(m->loaned(), m->target());
      oom_given += m->oom_given_back();
      loaned_share[i] += static_cast<double>(m->loaned()) / static_cast<double>(m->ram());
      ++present_periods[i];
      const bool is_short = m->short_of_memory(low_free);
      if (is_short && short_since[i] == 0) {
        short_since[i] = t + 1;
      } else if (!is_short && short_since[i] != 0) {
        // Short at the end of one period, fed at the end of a later one.
        const uint32_t took = t - (short_since[i] - 1);
        ++burst_hist[std::min<size_t>(took / dt, burst_hist.size() - 1)];
        ++r.bursts;
        short_since[i] = 0;
      }
    }
    recent_oom.Push(oom_given);
    if (use > pool_now) r.use_over_s += dt;
    if (entitled <= pool_now) {
      shrink_pending = false;
      if (oom_over_since != 0) {
        // Back within the pool: the episode lasted from its first period to this one.
        ++back_hist[std::min<size_t>((t - (oom_over_since - 1)) / dt, back_hist.size() - 1)];
        ++r.oom_overs;
        oom_over_since = 0;
      }
    } else {
      if (pool.feasibility().shortfall_bytes > Bytes(0)) {
        r.over_infeasible_s += dt;
      } else if (shrink_pending) {
        r.over_shrink_s += dt;
      } else if (entitled - pool_now <= recent_oom.Sum()) {
        r.over_oom_s += dt;
        if (oom_over_since == 0) oom_over_since = t + 1;
      } else {
        r.over_policy_s += dt;
      }
    }
    r.peak_use_bytes = std::max(r.peak_use_bytes, use);
    use_sum += static_cast<double>(use);
    unballooned_sum += static_cast<double>(unballooned);
    ++periods;

    const auto before = Clock::now();
    rebalancer.Round();
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - before).count();
    rebalance_total_us += us;
    r.rebalance_max_us = std::max(r.rebalance_max_us, us);
    if (options.progress && (t + dt) % 60 < dt) options.progress(t + dt);
  }

  r.still_waiting = static_cast<uint32_t>(waiting.size());
  r.mean_use_bytes = periods ? use_sum / static_cast<double>(periods) : 0;
  r.mean_unballooned_bytes = periods ? unballooned_sum / static_cast<double>(periods) : 0;
  r.mean_saved_bytes = r.mean_unballooned_bytes - r.mean_use_bytes;
  r.rebalance_mean_us = periods ? rebalance_total_us / static_cast<double>(periods) : 0;
  r.burst_p50_s = Percentile(burst_hist, 0.50, r.bursts) * dt;
  r.burst_p99_s = Percentile(burst_hist, 0.99, r.bursts) * dt;
  r.back_p50_s = Percentile(back_hist, 0.50, r.oom_overs) * dt;
  r.back_p99_s = Percentile(back_hist, 0.99, r.oom_overs) * dt;
  uint64_t changes_total = left_target_changes;
  r.fairness = {{0, 63}, {64, 127}, {128, 191}, {192, 255}};
  for (size_t i = 0; i < n; ++i) {
    if (members[i]) CountOnLeaving(*members[i], trace.members[i].shape.kind, r, changes_total);
    if (present_periods[i] == 0) continue;
    WeightBand& band = r.fairness[trace.members[i].settings.weight / 64];
    band.loaned_share += loaned_share[i] / present_periods[i];
    ++band.members;
  }
  for (WeightBand& b : r.fairness) {
    if (b.members) b.loaned_share /= b.members;
  }
  const double member_hours = static_cast<double>(n) * options.seconds / 3600.0;
  r.churn_per_member_hour = member_hours > 0 ? static_cast<double>(changes_total) / member_hours : 0;
  r.wall_s = std::chrono::duration<double>(Clock::now() - started).count();
  return r;
}

}  // namespace cmm::sim
