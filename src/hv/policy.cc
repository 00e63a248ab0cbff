#include "hv/policy.h"

#include <algorithm>
#include <cmath>

namespace cmm::hv {

namespace {

// Spreads `amount` over slots in proportion to `share`, no slot above its
// `cap`; what a capped slot cannot take goes to the others. Returns what
// each slot got.
std::vector<double> WaterFill(double amount, const std::vector<double>& share, const std::vector<double>& cap) {
  std::vector<double> got(share.size(), 0.0);
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
  return got;
}

}  // namespace

std::vector<int64_t> LoanRequests(const PolicyConfig& config, std::span<const PolicyInput> parts) {
  const size_t n = parts.size();
  std::vector<double> target(n);  // bytes each should have loaned
  double usable = 0;              // sum of RAM - target
  for (size_t i = 0; i < n; ++i) {
    const PolicyInput& p = parts[i];
    const uint64_t max = p.max_bytes == 0 ? p.ram_bytes : std::min(p.max_bytes, p.ram_bytes);
    // Start from what it has loaned, at least what is above its max.
    target[i] = static_cast<double>(std::max(p.loaned_bytes, p.ram_bytes - max));
    usable += static_cast<double>(p.ram_bytes) - target[i];
  }
  const double pool = static_cast<double>(config.pool_bytes);
  if (usable > pool) {
    // Over the pool: ask for the excess from idle memory.
    double excess = usable - pool;
    std::vector<double> share(n), taxed(n), rest(n);
    for (size_t i = 0; i < n; ++i) {
      const PolicyInput& p = parts[i];
      const double usable_i = static_cast<double>(p.ram_bytes) - target[i];
      const double above_min = std::max(0.0, usable_i - static_cast<double>(p.min_bytes));
      const double idle =
          p.frozen ? 0.0 : std::min(above_min, static_cast<double>(p.free_bytes + p.cache_bytes));
      share[i] = 256.0 - p.weight;
      taxed[i] = idle * config.idle_tax;
      rest[i] = idle - taxed[i];
    }
    std::vector<double> wshare(n);
    for (size_t i = 0; i < n; ++i) wshare[i] = share[i] * std::max(taxed[i], 1.0);
    const auto first = WaterFill(excess, wshare, taxed);
    for (size_t i = 0; i < n; ++i) excess -= first[i];
    for (size_t i = 0; i < n; ++i) wshare[i] = share[i] * std::max(rest[i], 1.0);
    const auto second = WaterFill(excess, wshare, rest);
    for (size_t i = 0; i < n; ++i) target[i] += first[i] + second[i];
  } else if (usable < pool) {
    // Room: hand loaned memory back, the needy first.
    double room = pool - usable;
    std::vector<double> need(n), other(n), cap(n);
    for (size_t i = 0; i < n; ++i) {
      const PolicyInput& p = parts[i];
      const uint64_t max = p.max_bytes == 0 ? p.ram_bytes : std::min(p.max_bytes, p.ram_bytes);
      cap[i] = p.frozen ? 0.0 : std::max(0.0, target[i] - static_cast<double>(p.ram_bytes - max));
      const bool needy = p.new_oom_events > 0 ||
                         static_cast<double>(p.free_bytes) < config.low_free * static_cast<double>(p.ram_bytes);
      (needy ? need : other)[i] = (p.weight + 1.0) * std::max(cap[i], 1.0);
    }
    const auto first = WaterFill(room, need, cap);
    for (size_t i = 0; i < n; ++i) {
      room -= first[i];
      cap[i] -= first[i];
    }
    const auto second = WaterFill(room, other, cap);
    for (size_t i = 0; i < n; ++i) target[i] -= first[i] + second[i];
  }
  std::vector<int64_t> out(n);
  const double g = static_cast<double>(std::max<uint64_t>(config.granule, 1));
  for (size_t i = 0; i < n; ++i) {
    const double delta = target[i] - static_cast<double>(parts[i].loaned_bytes);
    // Loans round up (the pool is a limit), give-backs round toward zero.
    const double rounded = delta > 0 ? std::ceil(delta / g) * g : std::trunc(delta / g) * g;
    out[i] = static_cast<int64_t>(rounded);
  }
  return out;
}

}  // namespace cmm::hv
