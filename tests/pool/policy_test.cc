// The pool policy as tables of inputs and the loan requests they give.
#include <gtest/gtest.h>

#include "pool/policy.h"

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

// The tables' sums are worked out at a headroom of a tenth of RAM (the
// default is 6%).
PolicyConfig Pool(uint64_t mb) {
  PolicyConfig c;
  c.pool_bytes = mb * MiB;
  c.headroom = 0.10;
  return c;
}

// What each is asked to loan more (positive) or may take back (negative).
std::vector<int64_t> LoanRequests(const PolicyConfig& c, const std::vector<PolicyInput>& in) {
  const PolicyDecision d = Decide(c, in);
  std::vector<int64_t> out;
  for (size_t i = 0; i < in.size(); ++i) {
    out.push_back(static_cast<int64_t>(d.targets[i]) - static_cast<int64_t>(in[i].loaned_bytes));
  }
  return out;
}

uint64_t EntitledAfter(const std::vector<PolicyInput>& in, const PolicyDecision& d) {
  uint64_t sum = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const uint64_t bound = std::min({in[i].loaned_bytes, in[i].loaned_bytes - in[i].granted_bytes, d.targets[i]});
    sum += in[i].ram_bytes - bound;
  }
  return sum;
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
  // Needing more than the taxed share takes from the rest, but never beyond
  // idle: what is above a headroom of a tenth of RAM here.
  c = Pool(624);
  c.headroom = 0.10;
  const auto big = LoanRequests(c, in);
  EXPECT_EQ(big[0], 200 * M);
  EXPECT_EQ(big[1], 200 * M);
}

TEST(Policy, EachMemberKeepsItsHeadroomIdleWhereItsNextBurstLands) {
  // A full pool: one member with 400 MiB of its 1000 idle, one short of
  // memory that wants its 500 MiB back. The idle one is asked for what it
  // has idle above its headroom, and not for the headroom itself: the pool
  // is not over, so that is where its own next burst lands.
  PolicyInput idle = Part(1000, 400);
  PolicyInput short_one = Part(1000, 0, 500);
  short_one.new_oom_events = 1;
  for (const double headroom : {0.06, 0.10, 0.20}) {
    PolicyConfig c = Pool(1500);
    c.headroom = headroom;
    const auto r = LoanRequests(c, std::vector<PolicyInput>{idle, short_one});
    EXPECT_NEAR(static_cast<double>(r[0]) / M, 400 - 1000 * headroom, 1.0) << headroom;
  }
}

// Issue 25, "memory of peaks": the room back to a member's recent peak is
// where room left over goes first; it is not kept from a member that is
// short now: idle memory is asked alike of members with and without a peak.
TEST(Policy, TheRoomBackToAPeakIsNotKeptFromAMemberShortNow) {
  PolicyInput burst = Part(1000, 400);
  burst.peak_bytes = 900 * MiB;
  const PolicyInput plain = Part(1000, 400);
  PolicyInput short_one = Part(1000, 0, 800);
  short_one.new_oom_events = 1;
  const auto r = LoanRequests(Pool(2000), {burst, plain, short_one});
  EXPECT_NEAR(static_cast<double>(r[0]) / M, 300, 1.0);  // all idle above the headroom, from each
  EXPECT_NEAR(static_cast<double>(r[1]) / M, 300, 1.0);
}

TEST(Policy, RoomLeftOverGoesFirstToAMemberShortOfTheRoomBackToItsPeakEvenOutOfTheReserve) {
  // Two members of 1000 MiB that loaned 500 each and use 400 (100 idle);
  // 100 MiB are kept back for give-backs. The one that peaked at 800 wants
  // 800 - 400 + 50 (low_free) - 100 = 350 MiB more room: it gets that first,
  // and the rest of the room (150) is shared in proportion to what each may
  // take back; the reserve stays.
  PolicyInput burst = Part(1000, 100, 500);
  burst.peak_bytes = 800 * MiB;
  const PolicyInput plain = Part(1000, 100, 500);
  PolicyConfig c = Pool(1600);
  c.giveback_reserve_bytes = 100 * MiB;
  auto r = LoanRequests(c, {burst, plain});
  EXPECT_LE(r[0], -350 * M);
  EXPECT_NEAR(static_cast<double>(r[0] + r[1]) / M, -500, 1.0);
  // A peak of 950 wants its whole 500 MiB back; with 400 MiB of room above
  // the reserve, it gets all of it, out of the reserve too, and the other
  // nothing.
  burst.peak_bytes = 950 * MiB;
  c.pool_bytes = 1500 * MiB;
  r = LoanRequests(c, {burst, plain});
  EXPECT_EQ(r[0], -500 * M);
  EXPECT_EQ(r[1], 0);
  // Without a peak, the room above the reserve goes by weight alike.
  burst.peak_bytes = 0;
  r = LoanRequests(c, {burst, plain});
  EXPECT_EQ(r[0], r[1]);
  EXPECT_NEAR(static_cast<double>(r[0] + r[1]) / M, -400, 1.0);
}

// Issue 25: "a buffer of free memory above its expected demand". A member
// whose use is growing is given room for what it will use before the pool
// can next answer, out of what is spare and before the others; and when
// another is short, the idle memory its growth will land in is not asked.
TEST(Policy, AMemberWhoseUseIsGrowingIsGivenRoomForItsGrowthFirstAndKeepsItsIdle) {
  // Two of 1000 MiB that loaned 500 each with 100 idle; 600 MiB of room.
  // The growing one wants 300 (growth) + 100 (headroom) - 100 (idle) = 300
  // first; the other 300 go in proportion to what each may take back
  // (200 and 500).
  PolicyInput growing = Part(1000, 100, 500);
  growing.growth_bytes = 300 * MiB;
  const PolicyInput plain = Part(1000, 100, 500);
  auto r = LoanRequests(Pool(1600), {growing, plain});
  EXPECT_NEAR(static_cast<double>(r[0]) / M, -300 - 300.0 * 200 / 700, 1.0);
  EXPECT_NEAR(static_cast<double>(r[0] + r[1]) / M, -600, 1.0);
  growing.growth_bytes = 0;
  r = LoanRequests(Pool(1600), {growing, plain});
  EXPECT_EQ(r[0], r[1]);
  // A member short of memory: the others' idle memory above their headroom
  // is asked, the growing one's only beyond its growth.
  PolicyInput short_now = Part(1000, 0, 500);
  short_now.new_oom_events = 1;
  growing = Part(1000, 400);
  growing.growth_bytes = 200 * MiB;
  r = LoanRequests(Pool(2600), {short_now, growing, Part(1000, 400)});
  EXPECT_LT(r[0], 0);
  EXPECT_GT(r[2], r[1]);
  EXPECT_LE(r[1], 100 * M);  // 400 idle - 100 headroom - 200 growth at most
}

// A rise seen at one reading may be the start of a burst: while it lasts,
// none of the member's idle memory is asked (it is where the burst lands);
// the others' is. Nothing is asked of the others ahead of it either.
TEST(Policy, AMemberWhoseUseRoseAtItsLastReadingIsNotAskedForItsIdleMemory) {
  PolicyInput short_now = Part(1000, 0, 500);
  short_now.new_oom_events = 1;
  PolicyInput rising = Part(1000, 400);
  rising.rising = true;
  auto r = LoanRequests(Pool(2600), {short_now, rising, Part(1000, 400)});
  EXPECT_LT(r[0], 0);
  EXPECT_EQ(r[1], 0);
  EXPECT_GT(r[2], 0);
  // Not rising: both are asked alike.
  rising.rising = false;
  r = LoanRequests(Pool(2600), {short_now, rising, Part(1000, 400)});
  EXPECT_EQ(r[1], r[2]);
  // With room to spare, a rising member neither asks nor is asked.
  rising.rising = true;
  r = LoanRequests(Pool(3000), {rising, Part(1000, 400)});
  EXPECT_LE(r[0], 0);
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
  // 824 MiB pool, 424 MiB backed: 400 MiB of room; the one with OOM events
  // takes back all it loaned, the rest goes to the other.
  PolicyInput needy = Part(512, 0, 300);
  needy.new_oom_events = 3;
  const PolicyInput idle = Part(512, 200, 300);
  const auto more = LoanRequests(Pool(824), std::vector<PolicyInput>{needy, idle});
  EXPECT_EQ(more[0], -300 * M);
  EXPECT_EQ(more[1], -100 * M);
}

// The "pressure signals count as demand": a guest swapping memory
// back in is short of memory though its cache looks idle (it may be what
// it cannot drop), and is given back what it loaned as one with OOM events.
TEST(Policy, AMemberThatSwapsInWantsItsLoanBackLikeOneWithOomEvents) {
  PolicyInput swapping = Part(512, 0, 300);
  swapping.cache_bytes = 150 * MiB;
  const PolicyInput idle = Part(512, 200, 300);
  EXPECT_EQ(LoanRequests(Pool(824), std::vector<PolicyInput>{swapping, idle})[0], -200 * M);  // half the room
  swapping.swapping = true;
  const auto more = LoanRequests(Pool(824), std::vector<PolicyInput>{swapping, idle});
  EXPECT_EQ(more[0], -300 * M);
  EXPECT_EQ(more[1], -100 * M);
}

TEST(Policy, ABurstIsAskedOfIdleMemoryAndGrantedOnlyFromRoom) {
  // 624 MiB pool, 424 backed: 200 of room. The needy one wants its 300
  // back: 200 now, and 100 asked of the idle one's idle memory, which the
  // needy one gets only once that loan is confirmed (make before break).
  PolicyInput needy = Part(512, 0, 300);
  needy.new_oom_events = 1;
  PolicyInput idle = Part(512, 200, 300);
  std::vector<PolicyInput> in{needy, idle};
  auto r = LoanRequests(Pool(624), in);
  EXPECT_EQ(r[0], -200 * M);
  EXPECT_EQ(r[1], 100 * M);
  // Next period, the idle one has not loaned yet: the needy one keeps its
  // grant and is given nothing more.
  in[0].granted_bytes = 200 * MiB;
  in[0].new_oom_events = 0;
  r = LoanRequests(Pool(624), in);
  EXPECT_EQ(r[0], -200 * M);
  EXPECT_EQ(r[1], 100 * M);
  // It has: the rest goes to the needy one.
  in[1].loaned_bytes = 400 * MiB;
  in[1].free_bytes = 100 * MiB;
  r = LoanRequests(Pool(624), in);
  EXPECT_EQ(r[0], -300 * M);
  EXPECT_EQ(r[1], 0);
}

TEST(Policy, NothingIsGrantedOutOfALoanOnlyAskedFor) {
  // A needy member and one asked earlier to loan 200 MiB that has not:
  // the pool is full, so the needy one gets nothing yet.
  PolicyInput needy = Part(512, 0, 200);
  needy.new_oom_events = 1;
  PolicyInput stalled = Part(512, 400, 0);
  const std::vector<PolicyInput> in{needy, stalled};
  const PolicyDecision d = Decide(Pool(824), in);
  EXPECT_EQ(d.targets[0], 200 * MiB);
  EXPECT_GE(d.targets[1], 200 * MiB);
  EXPECT_LE(EntitledAfter(in, d), 824 * MiB);
}

TEST(Policy, AGrantNotYetTakenCountsAgainstTheRoom) {
  // 100 MiB granted to the first and not yet taken: the pool is full with it.
  PolicyInput a = Part(512, 0, 300);
  a.granted_bytes = 100 * MiB;
  a.new_oom_events = 1;
  PolicyInput b = Part(512, 0, 300);
  b.new_oom_events = 1;
  const std::vector<PolicyInput> in{a, b};
  const PolicyDecision d = Decide(Pool(524), in);  // 312 + 212 = 524 backed
  EXPECT_LE(EntitledAfter(in, d), 524 * MiB);
  EXPECT_EQ(d.targets[1], 300 * MiB);
}

TEST(Policy, AShrunkPoolIsAskedOfMemoryBeyondIdleDownToTheFloors) {
  // Nothing idle and the pool 200 MiB smaller than what is backed.
  PolicyInput a = Part(512, 30);
  a.min_bytes = 256 * MiB;
  PolicyInput b = Part(512, 30);
  b.min_bytes = 256 * MiB;
  const auto r = LoanRequests(Pool(824), std::vector<PolicyInput>{a, b});
  EXPECT_EQ(r[0] + r[1], 200 * M);
}

TEST(Policy, ASmallNeedIsAskedOfAFewMembersInWholeBandsNotOfEveryoneInSlivers) {
  // 64 members of 1 GiB with idle memory; one short of memory wants its
  // 64 MiB back and the pool has no room: 1 MiB from each would change 63
  // targets; instead a member with the most idle memory gives it all.
  std::vector<PolicyInput> in(64, Part(1024, 600));
  in[0] = Part(1024, 0, 64);
  in[0].new_oom_events = 1;
  for (size_t i = 1; i < in.size(); ++i) in[i].free_bytes = (600 - i) * MiB;  // some have more idle than others
  const PolicyDecision d = Decide(Pool(64 * 1024 - 64), in);
  int changed = 0;
  uint64_t asked = 0;
  for (size_t i = 1; i < in.size(); ++i) {
    changed += d.targets[i] != in[i].loaned_bytes ? 1 : 0;
    asked += d.targets[i] - in[i].loaned_bytes;
  }
  EXPECT_LE(changed, 2);
  EXPECT_GE(asked, 64 * MiB);
  EXPECT_GT(d.targets[1], 0U);  // the idlest
  EXPECT_EQ(d.targets[0], 64 * MiB);  // fed next period, once that loan is confirmed
}

TEST(Policy, AnInfeasiblePoolHoldsEveryMemberAtItsFloorAndSaysByHowMuch) {
  // Three 384 MiB members with 256 MiB floors on a 512 MiB pool.
  std::vector<PolicyInput> in(3, Part(384, 300));
  for (auto& p : in) p.min_bytes = 256 * MiB;
  in[2].new_oom_events = 2;  // even a needy one is held
  const PolicyDecision d = Decide(Pool(512), in);
  EXPECT_EQ(d.floors_bytes, 768 * MiB);
  EXPECT_EQ(d.shortfall_bytes, 256 * MiB);
  for (const uint64_t t : d.targets) EXPECT_EQ(t, 128 * MiB);
  // Steady: once there, the same targets again.
  for (auto& p : in) {
    p.loaned_bytes = 128 * MiB;
    p.free_bytes = 10 * MiB;
    p.new_oom_events = 0;
  }
  const PolicyDecision again = Decide(Pool(512), in);
  EXPECT_EQ(again.targets, d.targets);
  EXPECT_EQ(again.shortfall_bytes, 256 * MiB);
}

// Issue 25: back within the pool fast after an OOM give-back.

TEST(Policy, TheReserveForGiveBacksIsNotHandedOutSoAGiveBackOfItsSizeStaysWithinThePool) {
  // 1024 MiB pool, two idle members of 512 MiB that loaned 300 each: 400
  // MiB of room, of which 64 are kept back.
  std::vector<PolicyInput> in = {Part(512, 200, 300), Part(512, 200, 300)};
  PolicyConfig c = Pool(1024);
  c.giveback_reserve_bytes = 64 * MiB;
  const PolicyDecision d = Decide(c, in);
  EXPECT_LE(EntitledAfter(in, d), 960 * MiB);
  EXPECT_GE(EntitledAfter(in, d), 950 * MiB);  // the rest is handed back
  // Both take their grants, then one takes 64 MiB back on OOM: still
  // within the pool.
  uint64_t after = 0;
  for (size_t i = 0; i < in.size(); ++i) after += in[i].ram_bytes - d.targets[i];
  EXPECT_LE(after + 64 * MiB, 1024 * MiB);
}

TEST(Policy, TheReserveForGiveBacksYieldsToTheFloors) {
  // Floors of 1000 MiB in a 1024 MiB pool: only 24 MiB can be kept back,
  // and the pool can still be met.
  PolicyInput a = Part(512, 0, 100);
  a.min_bytes = 500 * MiB;
  PolicyInput b = Part(512, 0, 100);
  b.min_bytes = 500 * MiB;
  PolicyConfig c = Pool(1024);
  c.giveback_reserve_bytes = 256 * MiB;
  const PolicyDecision d = Decide(c, std::vector<PolicyInput>{a, b});
  EXPECT_EQ(d.shortfall_bytes, 0U);
  EXPECT_LE(d.targets[0], 12 * MiB);
  EXPECT_LE(d.targets[1], 12 * MiB);
}

TEST(Policy, AMemberShortOfMemoryIsGrantedWhatItNeedsMostFirstEvenOutOfTheReserve) {
  // A full pool but for its reserve of 64 MiB, and nothing idle. The short
  // one (no free memory, 1 GiB of RAM) needs its headroom (a tenth of its
  // RAM here) back at once: it gets the 64 MiB now, rather than take them
  // on OOM.
  PolicyInput shortest = Part(1024, 0, 300);
  shortest.new_oom_events = 1;
  const PolicyInput other = Part(1024, 60, 600);
  PolicyConfig c = Pool(1148 + 64);  // 724 + 424 backed
  c.giveback_reserve_bytes = 64 * MiB;
  c.headroom = 0.10;
  auto r = LoanRequests(c, std::vector<PolicyInput>{shortest, other});
  EXPECT_EQ(r[0], -64 * M);
  EXPECT_EQ(r[1], 0);
  // Two short ones share what there is by what each needs most, not by
  // all each has loaned.
  PolicyInput little = Part(1024, 40, 600);  // needs 62 MiB more to have a tenth free
  little.new_oom_events = 1;
  r = LoanRequests(c, std::vector<PolicyInput>{shortest, little});
  EXPECT_NEAR(static_cast<double>(-r[0]) / M, 64.0 * 102.4 / (102.4 + 62.4), 1.0);
  EXPECT_NEAR(static_cast<double>(-r[1]) / M, 64.0 * 62.4 / (102.4 + 62.4), 1.0);
}

}  // namespace
}  // namespace cmm::hv
