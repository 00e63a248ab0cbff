// Issue 25: "demand beyond the pool, said in words": when what the members
// use (not only their floors) exceeds the pool, status, /metrics
// (cmm_pool_demand_bytes) and the log say so with figures and names.
#include <gtest/gtest.h>

#include "hv/metrics.h"
#include "hv/status.h"
#include "pool/demand_report.h"

namespace cmm::hv {
namespace {

constexpr Bytes MiB = cmm::MiB(1);

MemberView Using(const std::string& name, Bytes ram, Bytes loaned, Bytes free, Bytes cache) {
  MemberView m;
  m.name = name;
  m.ram_bytes = ram;
  m.loaned_bytes = loaned;
  m.target_loaned_bytes = loaned;
  m.backing_bytes = ram - loaned;
  m.stats.free_bytes = free;
  m.stats.cache_bytes = cache;
  m.stats.taken = MemberClock::now();
  return m;
}

TEST(DemandReport, AMembersUseIsItsUsableMemoryLessFreeAndCacheAndNothingBeforeItsFirstStats) {
  MemberStats st;
  st.free_bytes = 100 * MiB;
  st.cache_bytes = 50 * MiB;
  EXPECT_EQ(MemberUse(512 * MiB, 128 * MiB, st), Bytes(0));  // no stats yet
  st.taken = MemberClock::now();
  EXPECT_EQ(MemberUse(512 * MiB, 128 * MiB, st), 234 * MiB);
  st.free_bytes = 600 * MiB;  // more free than it has: none used
  EXPECT_EQ(MemberUse(512 * MiB, 128 * MiB, st), Bytes(0));
  MemberStats none;
  none.taken = MemberClock::now();
  EXPECT_EQ(MemberUse(512 * MiB, 900 * MiB, none), Bytes(0));  // a loan past its RAM: nothing usable
}

TEST(DemandReport, WithinThePoolNothingIsSaidAboveItTheFiguresAndTheBiggestUsersAre) {
  EXPECT_EQ(DemandMessage(768 * MiB, {{"a", 300 * MiB}, {"b", 468 * MiB}}), "");
  EXPECT_EQ(DemandMessage(768 * MiB, {{"db1", 339 * MiB}, {"web1", 340 * MiB}, {"batch1", 256 * MiB}}),
            "members use 935 MiB, the pool is 768 MiB: 167 MiB short; web1 340 MiB, db1 339 MiB, batch1 256 MiB");
  std::vector<NamedUse> many;
  for (int i = 0; i < 8; ++i) many.push_back({"m" + std::to_string(i), (10 + i) * MiB});
  const std::string said = DemandMessage(64 * MiB, many);
  EXPECT_NE(said.find("m7 17 MiB, m6 16 MiB, m5 15 MiB, m4 14 MiB, m3 13 MiB and 3 more"), std::string::npos) << said;
}

TEST(DemandReport, StatusAndMetricsCarryWhatMembersUseAndStatusSaysItWhenAboveThePool) {
  const std::vector<MemberView> members = {Using("web1", 512 * MiB, 100 * MiB, 50 * MiB, 22 * MiB),
                                           Using("db1", 512 * MiB, 0 * MiB, 100 * MiB, 73 * MiB)};
  // web1 uses 340 MiB, db1 339 MiB: 679 MiB.
  const auto within = StatusJson(768 * MiB, {}, members).get<HvStatus>();
  EXPECT_EQ(within.demand_bytes, AsUnsigned(679 * MiB));
  EXPECT_TRUE(within.problem.empty());
  const auto over = StatusJson(512 * MiB, {}, members).get<HvStatus>();
  EXPECT_EQ(over.problem, "members use 679 MiB, the pool is 512 MiB: 167 MiB short; web1 340 MiB, db1 339 MiB");
  // The floors come first: an infeasible pool says that.
  const auto infeasible = StatusJson(512 * MiB, {512 * MiB, 768 * MiB, 256 * MiB}, members).get<HvStatus>();
  EXPECT_NE(infeasible.problem.find("cannot be met"), std::string::npos);
  HcallStats hcalls;
  const std::string text = PrometheusText(512 * MiB, {512 * MiB, Bytes(0), Bytes(0)}, members, hcalls.Read());
  EXPECT_NE(text.find("# TYPE cmm_pool_demand_bytes gauge\ncmm_pool_demand_bytes 711983104\n"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace cmm::hv
