#include "pool/policy.h"

#include <algorithm>
#include <cmath>

namespace cmm::hv {

namespace {

// Spreads `amount` over slots in proportion to `share`, no slot above its
// `cap`; what a capped slot cannot take goes to the others, and what is
// left after a few proportional rounds goes to any slot with room, so the
// whole amount is placed whenever the caps allow it.
void WaterFill(double amount, const std::vector<double>& share, const std::vector<double>& cap,
               std::vector<double>& got) {
  got.assign(share.size(), 0.0);
  for (int round = 0; round < 8 && amount > 0.5; ++round) {
    double total = 0;
    for (size_t i = 0; i < share.size(); ++i) total += got[i] < cap[i] ? share[i] : 0;
    if (total <= 0) break;
    double given = 0;
    for (size_t i = 0; i < share.size(); ++i) {
      if (got[i] >= cap[i]) continue;
      const double take = std::min(cap[i] - got[i], amount * share[i] / total);
      got[i] += take;
      given += take;
    }
    amount -= given;
  }
  for (size_t i = 0; i < share.size() && amount > 0.5; ++i) {
    const double take = std::min(std::max(0.0, cap[i] - got[i]), amount);
    got[i] += take;
    amount -= take;
  }
}

// The columns a decision works in. Kept per thread between calls: a
// round over thousands of members then allocates (and faults in) nothing.
struct Work {
  std::vector<double> ram, min, ceil_loan, floor_loan, held, pos, desired, want, urgent, taxed, rest, to_peak, inverse,
      plus_one, take, share, cap, first, second, third, granted, back, needy_back, other_back, giveback, weight,
      allowed;
  std::vector<uint8_t> needy;
  std::vector<uint32_t> order;
  void Reset(size_t n) {
    // Columns read before they are written start at zero; the rest are
    // written whole before use.
    for (auto* v : {&want, &urgent, &taxed, &rest, &to_peak, &take, &cap, &third, &needy_back, &other_back}) {
      v->assign(n, 0.0);
    }
    for (auto* v : {&ram, &min, &ceil_loan, &floor_loan, &held, &pos, &desired, &inverse, &plus_one, &share, &first,
                    &second, &granted, &back, &giveback, &weight, &allowed}) {
      v->resize(n);
    }
    needy.resize(n);
  }
};

double Sum(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return s;
}

// What is still needed after the settle band, asked of few members in
// whole bands rather than of many in slivers: those with the most idle
// memory left (weighted by inverse weight) first, each at least a band's
// worth when it has it and at most `bands_at_most` bands (0: no limit).
// Returns what could not be placed.
double AskTheIdlest(double need, double bands_at_most, Work& w, std::span<const PolicyInput> members,
                    const PolicyConfig& config) {
  const size_t n = members.size();
  std::vector<uint32_t>& order = w.order;
  order.clear();
  for (size_t i = 0; i < n; ++i) {
    if (members[i].frozen || w.needy[i] != 0) continue;
    const double band = SettleBand(config, w.ram[i]);
    double spare = w.taxed[i] + w.rest[i] - std::max(0.0, w.desired[i] - w.pos[i]);
    if (bands_at_most > 0) spare = std::min(spare, bands_at_most * band);
    w.cap[i] = spare;
    if (spare >= band) order.push_back(static_cast<uint32_t>(i));
  }
  auto more_idle = [&w](uint32_t a, uint32_t b) { return w.cap[a] * w.inverse[a] > w.cap[b] * w.inverse[b]; };
  // The few largest first; more only if they do not cover it.
  size_t done = 0;
  for (size_t m = 16; done < order.size() && need > 0.5; m *= 4) {
    const size_t upto = std::min(order.size(), m);
    std::nth_element(order.begin() + static_cast<long>(done), order.begin() + static_cast<long>(upto - 1), order.end(),
                     more_idle);
    std::sort(order.begin() + static_cast<long>(done), order.begin() + static_cast<long>(upto), more_idle);
    for (; done < upto && need > 0.5; ++done) {
      const uint32_t i = order[done];
      const double ask = std::min(w.cap[i], need);
      w.desired[i] += ask;
      need -= ask;
    }
  }
  return need;
}

}  // namespace

double SettleBand(const PolicyConfig& config, double ram) {
  return std::max(4.0 * static_cast<double>(config.granule), ram * config.settle);
}

PolicyDecision Decide(const PolicyConfig& config, std::span<const PolicyInput> members) {
  const size_t n = members.size();
  const double whole = static_cast<double>(config.pool_bytes);
  thread_local Work w;
  w.Reset(n);
  auto& [ram, min, ceil_loan, floor_loan, held, pos, desired, want, urgent, taxed, rest, to_peak, inverse, plus_one,
         take, share, cap, first, second, third, granted, back, needy_back, other_back, giveback, weight, allowed, needy,
         order] = w;
  double entitled = 0;  // what the members may back now
  double floors = 0;
  for (size_t i = 0; i < n; ++i) {
    const PolicyInput& m = members[i];
    const uint64_t max = m.max_bytes == 0 ? m.ram_bytes : std::min(m.max_bytes, m.ram_bytes);
    ram[i] = static_cast<double>(m.ram_bytes);
    min[i] = static_cast<double>(std::min(m.min_bytes, max));
    ceil_loan[i] = ram[i] - static_cast<double>(max);
    floor_loan[i] = ram[i] - min[i];
    held[i] = static_cast<double>(m.loaned_bytes - std::min(m.granted_bytes, m.loaned_bytes));
    entitled += ram[i] - held[i];
    // Where it stands: the loan it is bound to, at least what is above its
    // max. A frozen member keeps what it has confirmed.
    pos[i] = std::max(m.frozen ? static_cast<double>(m.loaned_bytes) : held[i], ceil_loan[i]);
    floors += m.frozen ? ram[i] - held[i] : min[i];
    inverse[i] = 256.0 - m.weight;
    plus_one[i] = m.weight + 1.0;
    const double idle_now = static_cast<double>(m.free_bytes + m.cache_bytes);
    needy[i] = !m.frozen && (m.new_oom_events > 0 || m.swapping || idle_now < config.low_free * ram[i]);
  }
  PolicyDecision out;
  out.floors_bytes = static_cast<uint64_t>(floors);
  out.shortfall_bytes = floors > whole ? static_cast<uint64_t>(floors - whole) : 0;
  // The reserve for OOM give-backs is not handed out; it yields to the floors.
  const double held_back = std::min(static_cast<double>(config.giveback_reserve_bytes), std::max(0.0, whole - floors));
  out.giveback_reserve_bytes = static_cast<uint64_t>(held_back);
  const double pool = whole - held_back;

  if (out.shortfall_bytes > 0) {
    // Cannot be met: everyone at its floor, steadily.
    for (size_t i = 0; i < n; ++i) desired[i] = members[i].frozen ? pos[i] : floor_loan[i];
  } else {
    double usable = 0;
    for (size_t i = 0; i < n; ++i) {
      const PolicyInput& m = members[i];
      usable += ram[i] - pos[i];
      if (m.frozen) continue;
      const auto growth = static_cast<double>(m.growth_bytes);
      if (needy[i] != 0) {
        // It wants back all it has loaned, and first what brings its free
        // memory back to the headroom (a burst met within a round).
        want[i] = pos[i] - ceil_loan[i];
        const double idle_now = static_cast<double>(m.free_bytes + m.cache_bytes);
        urgent[i] = std::min(want[i], std::max(static_cast<double>(config.granule),
                                               config.headroom * ram[i] - idle_now));
        continue;
      }
      const double idle_now = static_cast<double>(m.free_bytes + m.cache_bytes);
      // Growing use, more than it has idle above its headroom: it wants
      // that much ahead of time, asked of the others' idle memory before
      // it is short (the burst then lands in free memory, not its OOM path).
      // (At most its growth: one merely below its headroom is not short.)
      const double ahead = std::clamp(std::min(growth, growth + config.headroom * ram[i] - idle_now), 0.0,
                                      pos[i] - ceil_loan[i]);
      if (ahead > 0) {
        want[i] = ahead;
        urgent[i] = ahead;
        continue;
      }
      const double above_min = std::max(0.0, ram[i] - pos[i] - min[i]);
      const double idle =
          m.rising ? 0.0 : std::min(above_min, std::max(0.0, idle_now - config.headroom * ram[i] - growth));
      taxed[i] = idle * config.idle_tax;
      rest[i] = idle - taxed[i];
      // The room that takes it back to its recent peak with low_free to
      // spare, beyond what it has idle: where room left over goes first.
      // Only room: idle memory it holds is asked as any other's when
      // another member is short (a sim of 10 000 members met more OOM
      // events, 8247 against 7342, with that room kept from the short).
      if (m.peak_bytes > 0) {
        const double used_now = std::max(0.0, ram[i] - pos[i] - idle_now);
        const double room_to_peak = static_cast<double>(m.peak_bytes) - used_now + config.low_free * ram[i];
        to_peak[i] = std::clamp(room_to_peak - idle_now, 0.0, pos[i] - ceil_loan[i]);
      }
    }
    const double need = Sum(want);
    const double deficit = usable + need - pool;
    // What the needy get in all, and of it what they need most, which may
    // reach into the reserve for give-backs: they would take it on OOM.
    double given_needy = need;
    double given_first = need;
    double room = 0;
    double room_for_peaks = 0;  // room, and the reserve for give-backs, when there is no deficit
    if (deficit > 0) {
      for (size_t i = 0; i < n; ++i) share[i] = inverse[i] * std::max(taxed[i], 1.0);
      WaterFill(deficit, share, taxed, first);
      for (size_t i = 0; i < n; ++i) share[i] = inverse[i] * std::max(rest[i], 1.0);
      WaterFill(deficit - Sum(first), share, rest, second);
      for (size_t i = 0; i < n; ++i) take[i] = first[i] + second[i];
      // Still over with nothing granted: the pool itself is over (not
      // merely its reserve spent), so ask what it takes of any memory above
      // the floors, those short of memory last.
      for (const bool of_needy : {false, true}) {
        const double over = usable - Sum(take) - whole;
        if (over <= 0) break;
        for (size_t i = 0; i < n; ++i) {
          const bool eligible = !members[i].frozen && (needy[i] != 0) == of_needy;
          cap[i] = eligible ? std::max(0.0, ram[i] - pos[i] - take[i] - min[i]) : 0.0;
          share[i] = inverse[i] * std::max(cap[i], 1.0);
        }
        WaterFill(over, share, cap, third);
        for (size_t i = 0; i < n; ++i) take[i] += third[i];
      }
      given_needy = std::clamp(pool - (usable - Sum(take)), 0.0, need);
      given_first = std::clamp(whole - (usable - Sum(take)), 0.0, need);
    } else {
      room = -deficit;
      room_for_peaks = room + held_back;
    }
    for (size_t i = 0; i < n; ++i) share[i] = plus_one[i] * std::max(urgent[i], 1.0);
    WaterFill(std::max(given_first, given_needy), share, urgent, granted);
    for (size_t i = 0; i < n; ++i) {
      cap[i] = want[i] - granted[i];
      share[i] = plus_one[i] * std::max(cap[i], 1.0);
    }
    WaterFill(std::max(0.0, given_needy - Sum(granted)), share, cap, first);
    for (size_t i = 0; i < n; ++i) granted[i] += first[i];
    // Room left over: first where it takes members back toward their
    // peaks (the next burst lands there; this may come out of the reserve
    // for give-backs, as a burst would take it anyway), then by weight.
    for (size_t i = 0; i < n; ++i) share[i] = plus_one[i] * std::max(to_peak[i], 1.0);
    WaterFill(room_for_peaks, share, to_peak, second);
    for (size_t i = 0; i < n; ++i) {
      cap[i] = members[i].frozen || needy[i] != 0 ? 0.0 : std::max(0.0, pos[i] - ceil_loan[i] - second[i] - granted[i]);
      share[i] = plus_one[i] * std::max(cap[i], 1.0);
      if (needy[i] == 0) urgent[i] = second[i] + granted[i];
    }
    WaterFill(std::max(0.0, room - Sum(second)), share, cap, back);
    for (size_t i = 0; i < n; ++i) back[i] += second[i];
    for (size_t i = 0; i < n; ++i) desired[i] = pos[i] + take[i] - granted[i] - back[i];
  }

  // Small moves are not worth a target change: a member not short of
  // memory keeps its last target when the new one is within a settle band
  // of it. Loans so skipped that the pool needs are asked instead of
  // members whose targets move anyway, then of those with the most idle
  // memory in whole bands, and only what they cannot give is asked of the
  // small movers after all.
  // Over the pool right now (an OOM give-back, a shrink), what is asked must
  // be met within a period or two: no one member is asked more than two
  // bands then.
  const bool over_now = entitled > pool;
  double projected = 0;  // what the members will back once all targets are met
  for (size_t i = 0; i < n; ++i) projected += ram[i] - desired[i];
  for (size_t i = 0; i < n; ++i) {
    const PolicyInput& m = members[i];
    third[i] = 0;
    cap[i] = 0;
    if (m.frozen || needy[i] != 0) continue;
    const double last = held[i] + static_cast<double>(m.asked_bytes);
    const double band = SettleBand(config, ram[i]);
    const double move = desired[i] - last;
    if (move < 0 && -move < band) {
      projected -= -move;
      desired[i] = last;
    } else if (move > 0 && move < band) {
      projected += move;
      third[i] = move;
      desired[i] = last;
    } else if (move >= band) {
      cap[i] = std::max(0.0, taxed[i] + rest[i] - take[i]);
    }
  }
  if (projected > pool) {
    double need = projected - pool;
    for (size_t i = 0; i < n; ++i) share[i] = inverse[i] * std::max(cap[i], 1.0);
    WaterFill(need, share, cap, first);
    for (size_t i = 0; i < n; ++i) desired[i] += first[i];
    need -= Sum(first);
    if (need > 0.5) need = AskTheIdlest(need, over_now ? 2.0 : 0.0, w, members, config);
    if (need > 0.5) {
      WaterFill(need, third, third, second);
      for (size_t i = 0; i < n; ++i) desired[i] += second[i];
    }
  }

  // Make before break: what is handed back comes only out of the pool's
  // room over what the members may back now: first what the needy need
  // most, then the rest of theirs, then the others'.
  for (size_t i = 0; i < n; ++i) {
    const PolicyInput& m = members[i];
    giveback[i] = m.frozen ? 0.0 : std::max(0.0, held[i] - desired[i]);
    urgent[i] = std::min(urgent[i], giveback[i]);
    (needy[i] != 0 ? needy_back : other_back)[i] = giveback[i] - urgent[i];
  }
  // What the needy need most, and the others' room back toward their
  // peaks, may come out of the reserve for give-backs: it is what they
  // would take back on OOM anyway.
  double budget = std::max(0.0, whole - entitled);
  allowed.assign(n, 0.0);
  for (std::vector<double>* part : {&urgent, &needy_back, &other_back}) {
    if (part == &needy_back) budget = std::max(0.0, budget - (whole - pool));
    for (size_t i = 0; i < n; ++i) weight[i] = plus_one[i] * std::max((*part)[i], 1.0);
    WaterFill(budget, weight, *part, first);
    budget -= Sum(first);
    for (size_t i = 0; i < n; ++i) allowed[i] += first[i];
  }

  out.targets.resize(n);
  const double g = static_cast<double>(std::max<uint64_t>(config.granule, 1));
  for (size_t i = 0; i < n; ++i) {
    const PolicyInput& m = members[i];
    const double t = desired[i] >= held[i] || m.frozen ? desired[i] : held[i] - allowed[i];
    if (m.frozen) {
      out.targets[i] = static_cast<uint64_t>(std::ceil(t));
      continue;
    }
    // Targets move from the confirmed loan in whole granules, always up:
    // a loan asked is never short, a grant never larger than allowed.
    const double loaned = static_cast<double>(m.loaned_bytes);
    double rounded = loaned + std::ceil((t - loaned) / g) * g;
    if (t <= floor_loan[i]) rounded = std::min(rounded, floor_loan[i]);
    rounded = std::clamp(rounded, t, ram[i]);
    out.targets[i] = static_cast<uint64_t>(std::ceil(rounded));
  }
  return out;
}

}  // namespace cmm::hv
