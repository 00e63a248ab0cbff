#include "sim/peers.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

namespace cmm::sim {

namespace {

constexpr double MiB = 1 << 20;

// A member as the peers see it: a guest of `size` bytes (its balloon's
// "actual"), within [min, max].
struct Guest {
  double ram = 0, size = 0, min = 0, max = 0, free = 0, cache = 0, backing = 0;
  bool frozen = false;
};

Guest GuestOf(const hv::PolicyInput& m) {
  Guest g;
  g.ram = static_cast<double>(m.ram_bytes);
  g.size = static_cast<double>(m.ram_bytes - std::min(m.loaned_bytes, m.ram_bytes));
  g.max = m.max_bytes == 0 ? g.ram : std::min(static_cast<double>(m.max_bytes), g.ram);
  g.min = std::min(static_cast<double>(m.min_bytes), g.max);
  g.free = static_cast<double>(m.free_bytes);
  g.cache = static_cast<double>(m.cache_bytes);
  g.backing = static_cast<double>(m.backing_bytes);
  g.frozen = m.frozen;
  return g;
}

// Every target as it was, and the floors as cmm counts them (each member's
// min, a frozen one's entitlement), so the pool's feasibility note reads
// the same under any policy.
hv::PolicyDecision Unchanged(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members) {
  hv::PolicyDecision d;
  d.targets.reserve(members.size());
  double floors = 0;
  for (const hv::PolicyInput& m : members) {
    d.targets.push_back(hv::LastTarget(m));
    const Guest g = GuestOf(m);
    floors += m.frozen ? static_cast<double>(hv::Entitlement(m.ram_bytes, m.loaned_bytes, m.granted_bytes)) : g.min;
  }
  d.floors_bytes = static_cast<uint64_t>(floors);
  const double pool = static_cast<double>(config.pool_bytes);
  d.shortfall_bytes = floors > pool ? static_cast<uint64_t>(floors - pool) : 0;
  return d;
}

// A guest size as a loan target, within the member's terms.
uint64_t LoanFor(const Guest& g, double size) {
  size = std::clamp(size, g.min, g.max);
  return static_cast<uint64_t>(std::llround(g.ram - size));
}

double HostUse(std::span<const hv::PolicyInput> members) {
  double use = 0;
  for (const hv::PolicyInput& m : members) use += static_cast<double>(m.backing_bytes);
  return use;
}

// --- Proxmox VE (pvestatd auto_ballooning, AutoBalloon::compute_alg1) ---

constexpr double kProxmoxTarget = 0.80;        // ballooning-target, %
constexpr double kProxmoxMaxChange = 100 * MiB;  // per VM per round
constexpr double kProxmoxDeadband = 10 * MiB;   // |goal| at or below: nothing

struct ProxmoxVm {
  Guest g;
  double shares = 1000;
  double result = -1;  // the new balloon size; < 0: none yet
  bool done = false;
};

// Moves `bytes` (grow > 0, shrink < 0) over `ids` by shares, each VM at most
// the maximum change away from where it is; returns what is left.
double ProxmoxChange(std::vector<ProxmoxVm>& vms, const std::vector<size_t>& ids, double bytes) {
  for (const size_t i : ids) vms[i].done = false;
  double rest = bytes;
  bool repeat = true;
  double progress = 1;
  for (int pass = 0; pass < 100 && rest != 0 && repeat && progress > 0; ++pass) {
    repeat = false;
    progress = 0;
    double shares_total = 0, alloc_old = 0;
    for (const size_t i : ids) {
      if (vms[i].done) continue;
      const double balloon = vms[i].result >= 0 ? vms[i].result : vms[i].g.size;
      alloc_old += balloon - vms[i].g.min;
      shares_total += vms[i].shares;
    }
    if (shares_total <= 0) break;
    const double alloc_new = alloc_old + rest;
    double changes = 0;
    for (const size_t i : ids) {
      ProxmoxVm& vm = vms[i];
      if (vm.done) continue;
      double desired = vm.g.min + std::floor(alloc_new / shares_total * vm.shares);
      if (desired > vm.g.max) {
        desired = vm.g.max;
        repeat = true;
      } else if (desired < vm.g.min) {
        desired = vm.g.min;
        repeat = true;
      }
      double balloon = 0;
      if (bytes > 0 && desired > vm.g.size) {
        balloon = std::min(vm.g.size + kProxmoxMaxChange, desired);
      } else if (desired < vm.g.size) {
        balloon = std::max(vm.g.size - kProxmoxMaxChange, desired);
      } else {
        vm.done = true;
        continue;
      }
      if (balloon == vm.g.size) continue;
      const double old = vm.result >= 0 ? vm.result : vm.g.size;
      vm.result = balloon;
      const double change = balloon - old;
      if (change != 0) {
        changes += change;
        progress += std::abs(balloon - vm.g.size);
        repeat = true;
      }
    }
    rest -= changes;
  }
  return rest;
}

// --- oVirt MoM (vdsm's mom.d/02-balloon.policy) ---

constexpr double kMomPressure = 0.20;
constexpr double kMomCritical = 0.05;
constexpr double kMomGuestFree = 0.20;
constexpr double kMomMaxChange = 0.05;
constexpr double kMomMinChange = 0.0025;

// --- Qubes OS qmemman (qubes/qmemman/algo.py, systemstate.py) ---

constexpr double kQubesCacheFactor = 1.3;
constexpr double kQubesMinPref = 200 * MiB;
constexpr double kQubesHostFreeLeft = 50 * MiB;
constexpr double kQubesDonorAtLeast = 10 * MiB;
constexpr double kQubesMoveAtLeast = 150 * MiB;
constexpr double kQubesMoveWhenShort = 15 * MiB;

double QubesPref(const Guest& g) {
  const double used = std::max(0.0, g.size - g.free - g.cache);
  return std::max(std::min(used * kQubesCacheFactor, g.max), kQubesMinPref);
}

struct Peer {
  PolicyKind kind;
  std::string_view name;
  std::string_view source;
  uint32_t interval_s;  // 0: every round
};

constexpr std::array<Peer, 4> kPeers = {{
    {PolicyKind::kCmm, "cmm", "cmm's own policy (make before break, idle tax, weights)", 0},
    {PolicyKind::kProxmox, "proxmox", "Proxmox VE auto-ballooning: host use to 80%, 100 MiB per VM per 10 s, shares",
     10},
    {PolicyKind::kMom, "mom", "oVirt MoM balloon rules: shrink below 20% host free, 20% guest free, 5% per 10 s", 10},
    {PolicyKind::kQubes, "qubes", "Qubes qmemman: used x 1.3 (at least 200 MiB), 50 MiB host free", 0},
}};

const Peer& PeerOf(PolicyKind k) { return kPeers.at(static_cast<size_t>(k)); }

}  // namespace

std::string_view PolicyName(PolicyKind k) { return PeerOf(k).name; }
std::string_view PolicySource(PolicyKind k) { return PeerOf(k).source; }

std::optional<PolicyKind> PolicyByName(std::string_view name) {
  for (const Peer& p : kPeers) {
    if (p.name == name) return p.kind;
  }
  return std::nullopt;
}

std::vector<PolicyKind> AllPolicies() {
  std::vector<PolicyKind> out;
  for (const Peer& p : kPeers) out.push_back(p.kind);
  return out;
}

hv::PolicyDecision ProxmoxStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members) {
  hv::PolicyDecision d = Unchanged(config, members);
  const double goal = static_cast<double>(config.pool_bytes) * kProxmoxTarget - HostUse(members);
  if (std::abs(goal) <= kProxmoxDeadband) return d;
  std::vector<ProxmoxVm> vms(members.size());
  std::vector<size_t> all, pressured, with_free;
  for (size_t i = 0; i < members.size(); ++i) {
    ProxmoxVm& vm = vms[i];
    vm.g = GuestOf(members[i]);
    // Shares default to 1000; cmm's weight (0-255) maps onto them.
    vm.shares = 1000.0 * (members[i].weight + 1) / 128;
    // No driver, or no minimum set: not ballooned automatically.
    if (vm.g.frozen || vm.g.min <= 0) continue;
    all.push_back(i);
    const bool has_free = vm.g.free > 0 && vm.g.free > 0.25 * vm.g.min && vm.g.size >= vm.g.min;
    (has_free ? with_free : pressured).push_back(i);
  }
  if (goal > 0) {
    // Growing: those under pressure first, all when that makes no progress.
    const double rest = ProxmoxChange(vms, pressured, goal);
    if (rest >= goal) ProxmoxChange(vms, all, rest);
  } else {
    // Shrinking: those with free memory first.
    const double rest = ProxmoxChange(vms, with_free, goal);
    if (rest <= goal) ProxmoxChange(vms, all, rest);
  }
  for (const size_t i : all) {
    if (vms[i].result >= 0) d.targets[i] = LoanFor(vms[i].g, vms[i].result);
  }
  return d;
}

hv::PolicyDecision MomStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members) {
  hv::PolicyDecision d = Unchanged(config, members);
  const double pool = std::max(1.0, static_cast<double>(config.pool_bytes));
  const double host_free = (pool - HostUse(members)) / pool;
  // The guests' free share scales down with the host's; at critical
  // pressure it goes negative (the guest is pushed to swap).
  const double guest_free = host_free <= kMomCritical ? host_free - kMomCritical
                                                      : kMomGuestFree * host_free / kMomPressure;
  for (size_t i = 0; i < members.size(); ++i) {
    const Guest g = GuestOf(members[i]);
    if (g.frozen) continue;  // no stats: ballooning skipped
    const double cur = g.size;
    const double used = cur - g.free;
    const double floor = std::max(g.min, used + guest_free * cur);
    auto big_enough = [&](double size) { return std::abs(size - cur) > kMomMinChange * cur; };
    if (host_free < kMomPressure) {
      const double size = std::max(cur * (1 - kMomMaxChange), floor);
      if (size <= cur && big_enough(size)) d.targets[i] = LoanFor(g, size);
    } else if (cur < g.max) {
      const double size = std::min(std::max(cur * (1 + kMomMaxChange), floor), g.max);
      if (big_enough(size)) d.targets[i] = LoanFor(g, size);
    }
    // The guaranteed minimum.
    if (cur < g.min) d.targets[i] = LoanFor(g, g.min);
  }
  return d;
}

hv::PolicyDecision QubesStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members) {
  hv::PolicyDecision d = Unchanged(config, members);
  const size_t n = members.size();
  std::vector<Guest> g(n);
  std::vector<double> pref(n, 0), target(n, -1);
  double assigned = 0;
  for (size_t i = 0; i < n; ++i) {
    g[i] = GuestOf(members[i]);
    assigned += g[i].size;
    if (!g[i].frozen) pref[i] = QubesPref(g[i]);
  }
  const double host_free = static_cast<double>(config.pool_bytes) - assigned - kQubesHostFreeLeft;
  double needed = 0, pref_total = 0, pref_acceptors = 0;
  std::vector<size_t> donors, acceptors;
  for (size_t i = 0; i < n; ++i) {
    if (g[i].frozen) continue;
    const double need = pref[i] - g[i].size;
    if (need < 0 || g[i].size >= g[i].max) {
      donors.push_back(i);
    } else {
      acceptors.push_back(i);
      pref_acceptors += pref[i];
    }
    needed += need;
    pref_total += pref[i];
  }
  const double available = host_free - needed;
  if (available > 0 && pref_total > 0) {
    // Enough: all that is free shared in proportion to preferred memory,
    // within each max; what a max cut off goes to the others.
    double left = 0;
    size_t accepting = 0;
    for (size_t i = 0; i < n; ++i) {
      if (g[i].frozen) continue;
      target[i] = 0.999 * (pref[i] + pref[i] / pref_total * available);
      if (target[i] > g[i].max) {
        left += target[i] - g[i].max;
        target[i] = g[i].max;
      } else {
        ++accepting;
      }
    }
    while (left > 1 && accepting > 0) {
      double next_left = 0;
      size_t next_accepting = accepting;
      const double bonus = 0.999 * left / static_cast<double>(accepting);
      for (size_t i = 0; i < n; ++i) {
        if (g[i].frozen || target[i] >= g[i].max) continue;
        if (target[i] + bonus >= g[i].max) {
          next_left += target[i] + bonus - g[i].max;
          target[i] = g[i].max;
          --next_accepting;
        } else {
          target[i] += bonus;
        }
      }
      left = next_left;
      accepting = next_accepting;
    }
  } else {
    // Short: donors down to their preferred memory, and what is squeezed
    // out goes to the acceptors by preferred memory. As in the source, a
    // donor's surplus is subtracted from the host's free memory.
    double squeezed = host_free;
    for (const size_t i : donors) {
      const double surplus = g[i].size - pref[i];
      if (surplus < kQubesDonorAtLeast) continue;
      squeezed -= surplus;
      target[i] = pref[i];
    }
    if (squeezed >= 0 && pref_acceptors > 0) {
      for (const size_t i : acceptors) {
        target[i] = std::min(0.999 * (g[i].size + pref[i] / pref_acceptors * squeezed), g[i].max);
      }
    }
  }
  // Not worth it unless it moves enough in all.
  double moved = 0;
  bool below_pref = false;
  for (size_t i = 0; i < n; ++i) {
    if (target[i] < 0) continue;
    moved += std::abs(target[i] - g[i].size);
    below_pref = below_pref || g[i].size < pref[i];
  }
  if (moved <= (below_pref ? kQubesMoveWhenShort : kQubesMoveAtLeast)) return d;
  for (size_t i = 0; i < n; ++i) {
    if (target[i] >= 0) d.targets[i] = LoanFor(g[i], target[i]);
  }
  return d;
}

DecideFn MakePolicy(PolicyKind k, uint32_t period_s) {
  if (k == PolicyKind::kCmm) return hv::Decide;
  DecideFn step = k == PolicyKind::kProxmox ? DecideFn(ProxmoxStep) : k == PolicyKind::kMom ? DecideFn(MomStep)
                                                                                           : DecideFn(QubesStep);
  const uint32_t every = std::max<uint32_t>(1, PeerOf(k).interval_s / std::max<uint32_t>(period_s, 1));
  auto round = std::make_shared<uint64_t>(0);
  return [step = std::move(step), every, round](const hv::PolicyConfig& config,
                                                std::span<const hv::PolicyInput> members) {
    const bool acts = (*round)++ % every == 0;
    return acts ? step(config, members) : Unchanged(config, members);
  };
}

}  // namespace cmm::sim
