// The peers' policies (cmm sim --policy, --compare) do what their sources
// say, constants included (../shared/PEERS.md): Proxmox VE's
// auto-ballooning, oVirt MoM's balloon rules, Qubes' qmemman; each on its
// own interval; and the same trace runs under each.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "sim/fleet.h"
#include "sim/peers.h"
#include "sim/trace.h"

namespace cmm::sim {
namespace {

constexpr uint64_t MiB = 1 << 20;

// A guest of `ram` MiB that has `size` MiB now, `used` of it used (the rest
// free), and backs what it uses.
hv::PolicyInput Guest(uint64_t ram, uint64_t size, uint64_t used, uint64_t min = 0) {
  hv::PolicyInput m;
  m.ram_bytes = ram * MiB;
  m.loaned_bytes = (ram - size) * MiB;
  m.min_bytes = min * MiB;
  m.weight = 127;
  m.free_bytes = (size - used) * MiB;
  m.backing_bytes = used * MiB;
  return m;
}

hv::PolicyConfig PoolOf(uint64_t mib) {
  hv::PolicyConfig c;
  c.pool_bytes = mib * MiB;
  return c;
}

// The guest size a decision gives member i.
uint64_t SizeMib(const hv::PolicyDecision& d, const std::vector<hv::PolicyInput>& in, size_t i) {
  return (in[i].ram_bytes - d.targets[i]) / MiB;
}

TEST(Proxmox, GrowsTowardHostUseAt80PercentAtMost100MibPerVmPerRound) {
  // Host (pool) 10 GiB, 2 GiB used: 6 GiB to give, far more than a round moves.
  std::vector<hv::PolicyInput> in = {Guest(4096, 1024, 1000, 512), Guest(4096, 1024, 1000, 512)};
  const auto d = ProxmoxStep(PoolOf(10240), in);
  EXPECT_EQ(SizeMib(d, in, 0), 1124u);
  EXPECT_EQ(SizeMib(d, in, 1), 1124u);
}

TEST(Proxmox, DoesNothingWithin10MibOfItsGoal) {
  // 80% of 1280 MiB is 1024 MiB; the guests use 1019.
  std::vector<hv::PolicyInput> in = {Guest(2048, 600, 519, 256), Guest(2048, 600, 500, 256)};
  const auto d = ProxmoxStep(PoolOf(1280), in);
  EXPECT_EQ(SizeMib(d, in, 0), 600u);
  EXPECT_EQ(SizeMib(d, in, 1), 600u);
}

TEST(Proxmox, ShrinksThoseWithFreeMemoryFirst) {
  // Host 1000 MiB, 1100 used: 300 MiB to take. The first guest has much
  // free memory, the second almost none (under a quarter of its minimum).
  std::vector<hv::PolicyInput> in = {Guest(2048, 1500, 600, 256), Guest(2048, 520, 500, 256)};
  const auto d = ProxmoxStep(PoolOf(1000), in);
  EXPECT_EQ(SizeMib(d, in, 0), 1400u);  // 100 MiB, the most one round moves
  EXPECT_EQ(SizeMib(d, in, 1), 520u);
}

TEST(Mom, ShrinksOnlyWhileHostFreeIsUnder20PercentAndByAtMost5Percent) {
  // Host 1000 MiB, 900 backed: 10% free, under pressure. Guest free share
  // 0.2 x 0.10 / 0.20 = 10% of its size.
  std::vector<hv::PolicyInput> in = {Guest(2048, 1000, 500), Guest(2048, 420, 400)};
  const auto d = MomStep(PoolOf(1000), in);
  EXPECT_EQ(SizeMib(d, in, 0), 950u);  // 5% of 1000 at most
  EXPECT_EQ(SizeMib(d, in, 1), 420u);  // its floor: 400 used + 42 free is above what it has
  // Host 30% free: no shrinking; guests grow by 5%.
  std::vector<hv::PolicyInput> calm = {Guest(2048, 1000, 300), Guest(2048, 800, 400)};
  const auto g = MomStep(PoolOf(1000), calm);
  EXPECT_EQ(SizeMib(g, calm, 0), 1050u);
  EXPECT_EQ(SizeMib(g, calm, 1), 840u);
}

TEST(Qubes, PreferredMemoryIsUsedTimes1Point3AtLeast200MibAndTheRestSharedByIt) {
  // 3000 MiB host, guests given 500 + 500. Preferred: 300 x 1.3 = 390 and
  // 100 x 1.3 = 130 -> 200. Free 3000 - 1000 - 50 = 1950; needed
  // (390 - 500) + (200 - 500) = -410, so 2360 shared by 390 : 200.
  std::vector<hv::PolicyInput> in = {Guest(4096, 500, 300), Guest(4096, 500, 100)};
  const auto d = QubesStep(PoolOf(3000), in);
  const double a = 0.999 * (390 + 390.0 / 590 * 2360);
  const double b = 0.999 * (200 + 200.0 / 590 * 2360);
  EXPECT_NEAR(static_cast<double>(SizeMib(d, in, 0)), a, 1.0);
  EXPECT_NEAR(static_cast<double>(SizeMib(d, in, 1)), b, 1.0);
}

TEST(Qubes, SkipsARebalanceThatMovesUnder150Mib) {
  // Already near the shares it would give: nothing moves.
  std::vector<hv::PolicyInput> in = {Guest(4096, 1000, 500), Guest(4096, 1000, 500)};
  const auto d = QubesStep(PoolOf(2100), in);
  EXPECT_EQ(SizeMib(d, in, 0), 1000u);
  EXPECT_EQ(SizeMib(d, in, 1), 1000u);
}

TEST(Peers, ATenSecondPeerActsOnceEveryTenOneSecondRoundsAndHoldsTargetsBetween) {
  auto decide = MakePolicy(PolicyKind::kProxmox, 1);
  std::vector<hv::PolicyInput> in = {Guest(4096, 1024, 1000, 512)};
  int acted = 0;
  for (int round = 0; round < 30; ++round) {
    const auto d = decide(PoolOf(10240), in);
    if (d.targets[0] != hv::LastTarget(in[0])) ++acted;
  }
  EXPECT_EQ(acted, 3);
  EXPECT_EQ(PolicyByName("mom"), PolicyKind::kMom);
  EXPECT_FALSE(PolicyByName("vmware").has_value());
  EXPECT_EQ(AllPolicies().front(), PolicyKind::kCmm);
}

TEST(Peers, TheSameTraceRunsUnderEachPolicyAndCmmNeverTakesThePoolOverByItsOwnDecision) {
  spdlog::set_level(spdlog::level::warn);  // two hundred joins
  const Trace trace = GenerateFleet(200, 7);
  SimOptions o;
  o.seconds = 600;
  o.seed = 7;
  for (const PolicyKind k : AllPolicies()) {
    o.policy = k;
    const SimReport r = RunSim(trace, o);
    EXPECT_EQ(r.policy, k);
    EXPECT_EQ(r.members, 200u);
    EXPECT_GT(r.churn_per_member_hour, 0) << PolicyName(k);
    uint64_t by_shape = 0;
    for (const uint64_t n : r.oom_by_shape) by_shape += n;
    EXPECT_EQ(by_shape, r.oom_events) << PolicyName(k);
    EXPECT_LE(r.oom_members, r.oom_events) << PolicyName(k);
    EXPECT_EQ(r.oom_members == 0, r.oom_events == 0) << PolicyName(k);
    if (k == PolicyKind::kCmm) {
      EXPECT_EQ(r.over_policy_s, 0);
      EXPECT_EQ(r.use_over_s, 0);
    }
  }
}

}  // namespace
}  // namespace cmm::sim
