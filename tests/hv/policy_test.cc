// The pool policy as tables of inputs and the loan requests they give.
#include <gtest/gtest.h>

#include "hv/policy.h"

namespace cmm::hv {
namespace {

constexpr uint64_t MiB = 1 << 20;
constexpr int64_t M = 1 << 20;

PolicyInput Part(uint64_t ram_mb, uint64_t free_mb, uint64_t loaned_mb = 0, uint8_t weight = 0) {
  PolicyInput p;
  p.ram_bytes = ram_mb * MiB;
  p.free_bytes = free_mb * MiB;
  p.loaned_bytes = loaned_mb * MiB;
  p.weight = weight;
  return p;
}

PolicyConfig Pool(uint64_t mb) {
  PolicyConfig c;
  c.pool_bytes = mb * MiB;
  return c;
}

TEST(Policy, WithinThePoolNobodyLoans) {
  const std::vector<PolicyInput> in = {Part(512, 100), Part(512, 100)};
  EXPECT_EQ(LoanRequests(Pool(1024), in), (std::vector<int64_t>{0, 0}));
}

TEST(Policy, ExcessIsAskedInProportionToIdleMemory) {
  // 3 x 768 MiB on a 1 GiB pool: 1280 MiB must be loaned.
  const std::vector<PolicyInput> in = {Part(768, 700), Part(768, 700), Part(768, 700)};
  const auto r = LoanRequests(Pool(1024), in);
  int64_t sum = 0;
  for (const auto v : r) sum += v;
  EXPECT_GE(sum, 1280 * M);
  EXPECT_LE(sum, 1283 * M);  // rounding up to whole MiB per partition
  EXPECT_EQ(r[0], r[1]);
  EXPECT_EQ(r[1], r[2]);
}

TEST(Policy, BusyPartitionsLoanLessIdleOnesMore) {
  const std::vector<PolicyInput> in = {Part(768, 50), Part(768, 700), Part(768, 700)};
  const auto r = LoanRequests(Pool(1024), in);
  EXPECT_LE(r[0], 50 * M);
  EXPECT_GT(r[1], r[0] * 5);
}

TEST(Policy, HigherWeightLoansLess) {
  const std::vector<PolicyInput> in = {Part(512, 400, 0, 255), Part(512, 400, 0, 0)};
  const auto r = LoanRequests(Pool(768), in);
  EXPECT_LT(r[0], r[1]);
  EXPECT_GE(r[0] + r[1], 256 * M);
}

TEST(Policy, IdleTaxTakesTheTaxedShareFirst) {
  // 100 MiB needed; each has 200 MiB idle, of which 150 taxed: all from the taxed share.
  PolicyConfig c = Pool(924);
  const std::vector<PolicyInput> in = {Part(512, 200), Part(512, 200)};
  const auto r = LoanRequests(c, in);
  EXPECT_EQ(r[0], 50 * M);
  EXPECT_EQ(r[1], 50 * M);
  // Needing more than the taxed share takes from the rest, but never beyond idle.
  const auto big = LoanRequests(Pool(624), in);
  EXPECT_EQ(big[0], 200 * M);
  EXPECT_EQ(big[1], 200 * M);
}

TEST(Policy, NeverAskedBelowMin) {
  PolicyInput p = Part(1024, 900);
  p.min_bytes = 800 * MiB;
  const auto r = LoanRequests(Pool(256), std::vector<PolicyInput>{p});
  EXPECT_EQ(r[0], 224 * M);  // 1024 - 800
}

TEST(Policy, AboveMaxIsAlwaysLoaned) {
  PolicyInput p = Part(1024, 900);
  p.max_bytes = 512 * MiB;
  EXPECT_EQ(LoanRequests(Pool(4096), std::vector<PolicyInput>{p})[0], 512 * M);
}

TEST(Policy, RoomGoesBackToTheNeedyFirst) {
  // 200 MiB of room; the one with OOM events gets it before the idle one.
  PolicyInput needy = Part(512, 0, 300);
  needy.new_oom_events = 3;
  const PolicyInput idle = Part(512, 200, 300);
  const auto r = LoanRequests(Pool(624), std::vector<PolicyInput>{needy, idle});
  EXPECT_EQ(r[0], -200 * M);
  EXPECT_EQ(r[1], 0);
  // More room than the needy one holds: the rest to the other.
  const auto more = LoanRequests(Pool(824), std::vector<PolicyInput>{needy, idle});
  EXPECT_EQ(more[0], -300 * M);
  EXPECT_EQ(more[1], -100 * M);
}

}  // namespace
}  // namespace cmm::hv
