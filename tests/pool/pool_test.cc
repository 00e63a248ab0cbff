// The pool of members (the words: the pool stops knowing memfds and
// wire messages): members of every kind behind one interface, one
// namespace, the rebalancer handing each its target; an unresponsive member
// is counted on for nothing. Fake members, no OS.
#include <atomic>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pool/idle_now.h"
#include "pool/peak_memory.h"
#include "pool/pool.h"
#include "pool/rebalancer.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;
constexpr Bytes MiB = cmm::MiB(1);

class FakeMember final : public Member {
 public:
  FakeMember(std::string name, MemberKind kind, Bytes ram, Bytes free)
      : name_(std::move(name)), kind_(kind), ram_(ram) {
    state_.ram_bytes = ram;
    state_.stats.free_bytes = free;
  }
  const std::string& name() const override { return name_; }
  MemberKind kind() const override { return kind_; }
  Bytes ram_bytes() const override { return ram_; }
  MemberState Observe() const override {
    std::lock_guard lock(mu_);
    return state_;
  }
  void Assign(const Assignment& a) override {
    std::lock_guard lock(mu_);
    last_ = a;
    ++assignments_;
  }
  void Set(bool responsive, Bytes loaned) {
    std::lock_guard lock(mu_);
    state_.responsive = responsive;
    state_.loaned_bytes = loaned;
  }
  void TookBackOnOom(Bytes loaned) {
    std::lock_guard lock(mu_);
    state_.loaned_bytes = loaned;
    ++state_.stats.oom_events;
  }
  // A new stats reading showing this much free.
  void Reading(Bytes free) {
    std::lock_guard lock(mu_);
    state_.stats.free_bytes = free;
    state_.stats.loaned_bytes = state_.loaned_bytes;
    state_.stats.taken = MemberClock::now() + std::chrono::nanoseconds(++readings_);
  }
  // A reading taken `at_s` seconds after the first, saying what it uses.
  void ReadingAt(double at_s, Bytes free, Bytes used) {
    std::lock_guard lock(mu_);
    state_.stats.free_bytes = free;
    state_.stats.used_bytes = used;
    state_.stats.loaned_bytes = state_.loaned_bytes;
    state_.stats.taken = first_reading_ + std::chrono::duration_cast<MemberClock::duration>(
                                              std::chrono::duration<double>(at_s));
  }
  // Its pressure counters as of its next reading.
  void Counters(Bytes swapped_in, uint64_t major_faults, Bytes reclaimed, Bytes cache = Bytes(0)) {
    std::lock_guard lock(mu_);
    state_.stats.swapped_in = swapped_in;
    state_.stats.major_faults = major_faults;
    state_.stats.reclaimed = reclaimed;
    state_.stats.cache_bytes = cache;
  }
  void Running(Bytes backing, bool with_stats) {
    std::lock_guard lock(mu_);
    state_.backing_bytes = backing;
    if (with_stats) state_.stats.taken = MemberClock::now();
  }
  Assignment last() const {
    std::lock_guard lock(mu_);
    return last_;
  }
  int assignments() const {
    std::lock_guard lock(mu_);
    return assignments_;
  }

 private:
  const MemberClock::time_point first_reading_ = MemberClock::now();
  const std::string name_;
  const MemberKind kind_;
  const Bytes ram_;
  mutable std::mutex mu_;
  MemberState state_;
  Assignment last_;
  int assignments_ = 0;
  int readings_ = 0;
};

// Sizes below are worked out at a headroom of a tenth of RAM.
Pool MakePool(Bytes bytes) {
  PoolOptions o;
  o.pool_bytes = bytes;
  o.policy.headroom = 0.10;
  return Pool(o);
}

// A pool of 4000 MiB at the default policy whose every decision's inputs
// land in `seen`.
Pool PoolSeeing(std::vector<PolicyInput>& seen) {
  PoolOptions o;
  o.pool_bytes = 4000 * MiB;
  o.decide = [&seen](const PolicyConfig& c, std::span<const PolicyInput> in) {
    seen.assign(in.begin(), in.end());
    return Decide(c, in);
  };
  return Pool(o);
}

TEST(Pool, PartitionsAndVmsShareOneNamespace) {
  Pool pool = MakePool(100 * MiB);
  auto a = std::make_shared<FakeMember>("a", MemberKind::kPartition, 64 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(a, {}).has_value());
  EXPECT_EQ(a->assignments(), 1);  // joins with nothing to loan yet
  EXPECT_EQ(a->last().pool_bytes, 100 * MiB);
  auto vm = std::make_shared<FakeMember>("a", MemberKind::kVm, 64 * MiB, Bytes(0));
  const auto refused = pool.Add(vm, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().message, "a partition named a is already registered");
  const auto views = pool.Snapshot();
  ASSERT_EQ(views.size(), 1U);
  EXPECT_EQ(views[0].kind, MemberKind::kPartition);
  pool.Remove(*vm);  // not the member of that name: nothing happens
  EXPECT_EQ(pool.Snapshot().size(), 1U);
  pool.Remove(*a);
  EXPECT_TRUE(pool.Snapshot().empty());
}

TEST(Pool, EveryKindIsGivenItsTargetByTheSamePolicy) {
  Pool pool = MakePool(100 * MiB);
  auto p = std::make_shared<FakeMember>("p", MemberKind::kPartition, 100 * MiB, 90 * MiB);
  auto v = std::make_shared<FakeMember>("v", MemberKind::kVm, 100 * MiB, 90 * MiB);
  ASSERT_TRUE(pool.Add(p, {}).has_value());
  ASSERT_TRUE(pool.Add(v, {}).has_value());
  pool.Rebalance();
  // 200 MiB of RAM on 100: the excess is shared alike between like members.
  EXPECT_GE(p->last().target_loaned_bytes + v->last().target_loaned_bytes, 100 * MiB);
  EXPECT_EQ(p->last().target_loaned_bytes, v->last().target_loaned_bytes);
  EXPECT_EQ(pool.Snapshot()[1].target_loaned_bytes, v->last().target_loaned_bytes);
}

// Stats come less often than rounds: what a member loaned since its last
// reading came out of the idle memory that reading shows. A round between
// two readings does not ask again for idle memory already loaned, which
// would take the member below its headroom.
TEST(Pool, ARoundBetweenTwoStatsReadingsDoesNotAskAgainForIdleMemoryAlreadyLoaned) {
  Pool pool = MakePool(1500 * MiB);
  auto idle = std::make_shared<FakeMember>("idle", MemberKind::kPartition, 1000 * MiB, 400 * MiB);
  auto short_one = std::make_shared<FakeMember>("short", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  idle->Running(Bytes(0), true);  // one reading, then none
  short_one->Set(true, 500 * MiB);
  short_one->Running(Bytes(0), true);
  ASSERT_TRUE(pool.Add(idle, {}).has_value());
  ASSERT_TRUE(pool.Add(short_one, {}).has_value());
  pool.Rebalance();
  // All it has idle above its headroom (a tenth of its RAM) is asked.
  const Bytes asked = idle->last().target_loaned_bytes;
  EXPECT_NEAR(static_cast<double>(asked.value()) / MiB.value(), 300, 1);
  idle->Set(true, asked);  // loaned, before its next reading
  pool.Rebalance();
  EXPECT_EQ(idle->last().target_loaned_bytes, asked);
  // The next reading shows it: still nothing more asked.
  idle->Reading(100 * MiB);
  pool.Rebalance();
  EXPECT_EQ(idle->last().target_loaned_bytes, asked);
}

// A partition's stats come with its H_GET_MPP, and its balloon inflates
// right after that call: a round may see the reading and the loan it
// answered at once. The stats count against the loan when they were
// taken; counted against the loan now, the memory just loaned read as
// still idle and was asked a second time, below what the member used.
TEST(Pool, AReadingSeenWithTheLoanThatFollowedItIsCountedAgainstTheLoanBeforeIt) {
  Pool pool = MakePool(1500 * MiB);
  auto idle = std::make_shared<FakeMember>("idle", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto short_one = std::make_shared<FakeMember>("short", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  short_one->Set(true, 500 * MiB);
  short_one->Running(Bytes(0), true);
  idle->Reading(400 * MiB);
  ASSERT_TRUE(pool.Add(idle, {}).has_value());
  ASSERT_TRUE(pool.Add(short_one, {}).has_value());
  pool.Rebalance();
  const Bytes asked = idle->last().target_loaned_bytes;
  EXPECT_NEAR(static_cast<double>(asked.value()) / MiB.value(), 300, 1);
  // Its next call: a reading taken before its balloon moved (400 MiB free
  // at no loan), then the loan asked, both before the next round.
  idle->Reading(400 * MiB);
  idle->Set(true, asked);
  pool.Rebalance();
  EXPECT_EQ(idle->last().target_loaned_bytes, asked);
}

// Issue 25: "a give-back (CMM OOM notifier, deflate-on-oom) is answered at
// once, not at the next period". A loan that falls below its target on its
// own is the member's OOM path: the same round asks the others for it and
// does not ask it again, before its stats (once a second) show the count;
// when they do, it is not counted twice.
TEST(Pool, ALoanFallenBelowItsTargetIsAnsweredAsAGiveBackInTheSameRound) {
  Pool pool = MakePool(1500 * MiB);
  auto idle = std::make_shared<FakeMember>("idle", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto burst = std::make_shared<FakeMember>("burst", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(idle, {}).has_value());
  ASSERT_TRUE(pool.Add(burst, {}).has_value());
  const Bytes loan = burst->last().target_loaned_bytes;
  ASSERT_EQ(loan, 500 * MiB);  // the pool's room went to the first
  idle->Set(true, idle->last().target_loaned_bytes);
  burst->Set(true, loan);
  idle->Reading(600 * MiB);
  burst->Reading(100 * MiB);
  pool.Rebalance();
  ASSERT_EQ(idle->last().target_loaned_bytes, Bytes(0));  // nothing needed of it yet
  ASSERT_EQ(burst->last().target_loaned_bytes, loan);
  burst->Set(true, loan - 64 * MiB);  // its OOM path; its stats have not said so yet
  pool.Rebalance();
  EXPECT_GE(idle->last().target_loaned_bytes, 64 * MiB);
  EXPECT_LE(burst->last().target_loaned_bytes, loan - 64 * MiB);
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, 64 * MiB);
  // Its stats catch up: the same give-back, not a second one.
  burst->TookBackOnOom(loan - 64 * MiB);
  burst->Reading(0 * MiB);
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, 64 * MiB);
  // A loan going down because it was granted memory back is no give-back.
  idle->Set(true, idle->last().target_loaned_bytes);
  pool.Rebalance();
  ASSERT_LT(burst->last().target_loaned_bytes, loan - 64 * MiB);
  burst->Set(true, burst->last().target_loaned_bytes);
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, 64 * MiB);
}

// Admission: "its balloon holds what the pool has no room for before its
// workload runs". On a loaded host a round may come between a partition's
// join and its first call; knowing nothing of it yet, the round keeps the
// loan it was admitted with instead of handing it back and asking it of a
// member that uses its memory.
TEST(Pool, AMemberThatHasNotReportedYetKeepsTheLoanItWasAdmittedWith) {
  Pool pool = MakePool(1500 * MiB);
  auto busy = std::make_shared<FakeMember>("busy", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(busy, {}).has_value());
  busy->Set(true, Bytes(0));
  busy->Reading(100 * MiB);  // it uses 900 MiB of its 1000
  auto late = std::make_shared<FakeMember>("late", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(late, {}).has_value());
  const Bytes admitted = late->last().target_loaned_bytes;
  ASSERT_EQ(admitted, 500 * MiB);
  for (int round = 0; round < 5; ++round) {
    pool.Rebalance();
    EXPECT_EQ(late->last().target_loaned_bytes, admitted) << "round " << round;
    EXPECT_EQ(busy->last().target_loaned_bytes, Bytes(0)) << "round " << round;
  }
  // Its first reading: from then on it is one member among others.
  late->Set(true, admitted);
  late->Reading(450 * MiB);
  busy->Reading(100 * MiB);
  pool.Rebalance();
  EXPECT_GE(late->last().target_loaned_bytes, admitted);
  EXPECT_EQ(busy->last().target_loaned_bytes, Bytes(0));
}

// Issue 25: "take the spare from members whose free memory exceeds their
// buffer, before anyone is short, so a burst meets free memory in the
// member that bursts". Use that grew 150 MiB a second over two readings is
// expected to grow 300 MiB more over the policy's lead of 2 s: what it
// lacks for that (with its headroom) is asked of the idle member at once,
// and handed to it once that loan is confirmed. One jump alone (a step
// already taken) is not followed.
TEST(Pool, AMemberWhoseUseKeepsGrowingIsHandedRoomForItsGrowthBeforeItIsShort) {
  Pool pool = MakePool(1600 * MiB);
  auto idle = std::make_shared<FakeMember>("idle", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto growing = std::make_shared<FakeMember>("growing", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(idle, {}).has_value());
  ASSERT_TRUE(pool.Add(growing, {}).has_value());
  ASSERT_EQ(growing->last().target_loaned_bytes, 400 * MiB);
  idle->Set(true, Bytes(0));
  growing->Set(true, 400 * MiB);
  idle->ReadingAt(0, 800 * MiB, 200 * MiB);
  growing->ReadingAt(0, 500 * MiB, 100 * MiB);
  pool.Rebalance();
  ASSERT_EQ(idle->last().target_loaned_bytes, Bytes(0));
  ASSERT_EQ(growing->last().target_loaned_bytes, 400 * MiB);
  growing->ReadingAt(1, 350 * MiB, 250 * MiB);  // one jump of 150 MiB
  pool.Rebalance();
  EXPECT_EQ(idle->last().target_loaned_bytes, Bytes(0));
  growing->ReadingAt(2, 200 * MiB, 400 * MiB);  // and another: it keeps growing; not short yet
  pool.Rebalance();
  // 300 (growth) + 100 (headroom) - 200 (free) = 200 MiB, asked first.
  EXPECT_EQ(idle->last().target_loaned_bytes, 200 * MiB);
  EXPECT_EQ(growing->last().target_loaned_bytes, 400 * MiB);  // make before break
  idle->Set(true, 200 * MiB);
  pool.Rebalance();
  EXPECT_EQ(growing->last().target_loaned_bytes, 200 * MiB);
  // Its use stops growing: nothing more is asked for it.
  growing->Set(true, 200 * MiB);
  growing->ReadingAt(3, 400 * MiB, 400 * MiB);
  pool.Rebalance();
  EXPECT_EQ(idle->last().target_loaned_bytes, 200 * MiB);
}

// One member's readings a second apart: its free memory and use, and its
// reclaim count and cache; the growth the pool expects of it at the last.
struct Reading {
  Bytes free, used, reclaimed, cache;
};
uint64_t GrowthAfter(std::initializer_list<Reading> readings) {
  std::vector<PolicyInput> seen;
  Pool pool = PoolSeeing(seen);
  auto m = std::make_shared<FakeMember>("burst", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  EXPECT_TRUE(pool.Add(m, {}).has_value());
  m->Set(true, Bytes(0));
  double at_s = 0;
  for (const Reading& r : readings) {
    m->Counters(Bytes(0), 0, r.reclaimed, r.cache);
    m->ReadingAt(at_s++, r.free, r.used);
    pool.Rebalance();
  }
  EXPECT_EQ(seen.size(), 1U);
  return seen.empty() ? 0 : seen[0].growth_bytes;
}

// A burst eating its cache: its use grows while its allocations reclaim
// with no free memory left. It is followed at once, at its last rate (the
// burst as it is now), not the lesser of its last two: 2 x 200 MiB over
// the lead, against 2 x 50 for the same readings without the reclaim; and
// a first rise under reclaim is followed too, until the next reading (a
// second of the 2 s lead), where one that fitted in free memory is not (a
// step already taken).
TEST(Pool, AMemberWhoseGrowingUseReclaimsWithNoFreeMemoryLeftIsFollowedAtItsLastRate) {
  for (const bool reclaims : {false, true}) {
    const Bytes reclaimed = reclaims ? 100 * MiB : Bytes(0);
    EXPECT_EQ(GrowthAfter({{200 * MiB, 100 * MiB, Bytes(0), 700 * MiB},
                           {250 * MiB, 150 * MiB, Bytes(0), 600 * MiB},  // 50 MiB/s, free memory left
                           {Bytes(0), 350 * MiB, reclaimed, 650 * MiB}}),  // 200 MiB/s, its free memory gone
              (reclaims ? 400 : 100) * MiB.value())
        << reclaims;
    EXPECT_EQ(GrowthAfter({{200 * MiB, 100 * MiB, Bytes(0), 700 * MiB},
                           {Bytes(0), 350 * MiB, reclaimed, 650 * MiB}}),  // one rise of 250 MiB, its free memory gone
              (reclaims ? 250 : 0) * MiB.value())
        << reclaims;
  }
}

// A rise of a settle band or more over the growth lead, seen at one
// reading, keeps the member's idle memory from being asked; a slow rise
// (a leak) does not.
TEST(Pool, AMemberWhoseUseJumpedAtItsLastReadingKeepsItsIdleMemoryAndOneThatCreepsDoesNot) {
  Pool pool = MakePool(2600 * MiB);
  auto jumped = std::make_shared<FakeMember>("jumped", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto creeps = std::make_shared<FakeMember>("creeps", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto short_one = std::make_shared<FakeMember>("short", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(jumped, {}).has_value());
  ASSERT_TRUE(pool.Add(creeps, {}).has_value());
  ASSERT_TRUE(pool.Add(short_one, {}).has_value());
  jumped->Set(true, Bytes(0));
  creeps->Set(true, Bytes(0));
  short_one->Set(true, 500 * MiB);
  jumped->ReadingAt(0, 600 * MiB, 400 * MiB);
  creeps->ReadingAt(0, 600 * MiB, 400 * MiB);
  short_one->ReadingAt(0, 200 * MiB, 300 * MiB);
  pool.Rebalance();
  jumped->ReadingAt(1, 570 * MiB, 430 * MiB);  // 30 MiB in a second: 60 MiB over the lead, a band is 15.6
  creeps->ReadingAt(1, 598 * MiB, 402 * MiB);  // 2 MiB
  short_one->TookBackOnOom(500 * MiB);
  pool.Rebalance();
  EXPECT_EQ(jumped->last().target_loaned_bytes, Bytes(0));
  EXPECT_GT(creeps->last().target_loaned_bytes, Bytes(0));
}

// Issue 25: "the peak estimate rises in one period and decays over its
// slow window"; only use met under pressure raises it.
TEST(PeakMemory, RisesInOneReadingUnderPressureAndFallsBackOverItsWindow) {
  PeakMemory p(600);
  p.Note(100 * MiB, 1, false);
  EXPECT_EQ(p.peak(), Bytes(0));           // grew without pressure: followed in time, not remembered
  p.Note(400 * MiB, 1, true);
  EXPECT_EQ(p.peak(), 400 * MiB);          // a burst that outran the pool: at once
  p.Note(100 * MiB, 60, false);            // a minute later it still keeps most of the room
  EXPECT_NEAR(static_cast<double>(p.peak().value()) / MiB.value(), 100 + 300 * std::exp(-0.1), 0.01);
  for (int i = 0; i < 60; ++i) p.Note(100 * MiB, 60, false);  // an hour on: six windows
  EXPECT_LT(p.peak(), 101 * MiB);
  PeakMemory none(0);                      // no memory of peaks: its use now
  none.Note(400 * MiB, 1, true);
  none.Note(100 * MiB, 1, false);
  EXPECT_EQ(none.peak(), 100 * MiB);
}

// A member that meets its OOM path tells the policy its peak, by its next
// stats reading; one that grows as much without pressure does not.
TEST(Pool, AMemberThatMetItsOomPathHasItsPeakRememberedAndOneThatGrewWithoutPressureNot) {
  std::vector<PolicyInput> seen;
  Pool pool = PoolSeeing(seen);
  auto burst = std::make_shared<FakeMember>("burst", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  auto grows = std::make_shared<FakeMember>("grows", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(burst, {}).has_value());
  ASSERT_TRUE(pool.Add(grows, {}).has_value());
  burst->Reading(900 * MiB);  // both use 100 MiB
  grows->Reading(900 * MiB);
  pool.Rebalance();
  burst->TookBackOnOom(Bytes(0));
  burst->Reading(100 * MiB);  // 900 MiB used, after an OOM event
  grows->Reading(100 * MiB);  // as much, followed in time: 10% free
  pool.Rebalance();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].peak_bytes, 900 * MiB.value());
  EXPECT_EQ(seen[1].peak_bytes, 0U);
  burst->Reading(900 * MiB);  // both back to 100 MiB: the one that burst keeps its peak
  grows->Reading(900 * MiB);
  pool.Rebalance();
  EXPECT_GT(seen[0].peak_bytes, 890 * MiB.value());
  EXPECT_EQ(seen[1].peak_bytes, 0U);
}

// The "pressure signals count as demand": what a guest's pressure
// counters grew between two readings. Swap-ins make it short of memory for
// the round that reads them; reclaim or major faults with no free memory
// left have its use remembered as a peak. The first reading (what it
// counted before it joined) and a count that fell (it restarted) say
// nothing.
TEST(Pool, SwapInsMakeAMemberShortAndReclaimWithNoFreeMemoryIsRememberedAsItsPeak) {
  std::vector<PolicyInput> seen;
  Pool pool = PoolSeeing(seen);
  auto vm = std::make_shared<FakeMember>("vm", MemberKind::kVm, 1000 * MiB, Bytes(0));
  auto part = std::make_shared<FakeMember>("part", MemberKind::kPartition, 1000 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(vm, {}).has_value());
  ASSERT_TRUE(pool.Add(part, {}).has_value());
  // Joined with counts from before: nothing read from them.
  vm->Counters(500 * MiB, 100000, Bytes(0), 400 * MiB);
  part->Counters(Bytes(0), 0, 300 * MiB, 400 * MiB);
  vm->ReadingAt(1, 300 * MiB, 300 * MiB);
  part->ReadingAt(1, 300 * MiB, 300 * MiB);
  pool.Rebalance();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_FALSE(seen[0].swapping);
  EXPECT_EQ(seen[1].peak_bytes, 0U);

  // 8 MiB swapped in; the other reclaimed 50 MiB with free memory to spare.
  vm->Counters(508 * MiB, 100000, Bytes(0), 400 * MiB);
  part->Counters(Bytes(0), 0, 350 * MiB, 400 * MiB);
  vm->ReadingAt(2, 300 * MiB, 300 * MiB);
  part->ReadingAt(2, 300 * MiB, 300 * MiB);
  pool.Rebalance();
  EXPECT_TRUE(seen[0].swapping);
  EXPECT_EQ(seen[1].peak_bytes, 0U);
  pool.Rebalance();  // no new reading: said once
  EXPECT_FALSE(seen[0].swapping);

  // Reclaim with no free memory (its cache is what is left): its use met
  // none, and is remembered. Major faults the same, for the VM.
  vm->Counters(508 * MiB, 100000 + 2000, Bytes(0), 400 * MiB);
  part->Counters(Bytes(0), 0, 400 * MiB, 400 * MiB);
  vm->ReadingAt(3, Bytes(0), 600 * MiB);
  part->ReadingAt(3, Bytes(0), 600 * MiB);
  pool.Rebalance();
  EXPECT_FALSE(seen[0].swapping);
  EXPECT_EQ(seen[0].peak_bytes, 600 * MiB.value());
  EXPECT_EQ(seen[1].peak_bytes, 600 * MiB.value());

  // Restarted: its count fell. Nothing is read from the fall.
  vm->Counters(Bytes(0), 0, Bytes(0), 400 * MiB);
  vm->ReadingAt(4, 300 * MiB, 300 * MiB);
  pool.Rebalance();
  EXPECT_FALSE(seen[0].swapping);
  vm->Counters(MiB / 2, 0, Bytes(0), 400 * MiB);  // less than a granule: noise
  vm->ReadingAt(5, 300 * MiB, 300 * MiB);
  pool.Rebalance();
  EXPECT_FALSE(seen[0].swapping);
}

TEST(IdleSinceStats, ALoanSinceTheReadingComesOutOfFreeThenCacheAndAGrantGoesToFree) {
  MemberStats st;
  st.free_bytes = 100 * MiB;
  st.cache_bytes = 50 * MiB;
  IdleNow n = IdleSinceStats(st, Bytes(0), 1000 * MiB);
  EXPECT_EQ(n.free, 100 * MiB);
  EXPECT_EQ(n.cache, 50 * MiB);
  n = IdleSinceStats(st, 120 * MiB, 1000 * MiB);
  EXPECT_EQ(n.free, Bytes(0));
  EXPECT_EQ(n.cache, 30 * MiB);
  n = IdleSinceStats(st, 500 * MiB, 1000 * MiB);
  EXPECT_EQ(n.free, Bytes(0));
  EXPECT_EQ(n.cache, Bytes(0));
  n = IdleSinceStats(st, -40 * MiB, 1000 * MiB);
  EXPECT_EQ(n.free, 140 * MiB);
  EXPECT_EQ(n.cache, 50 * MiB);
  n = IdleSinceStats(st, -2000 * MiB, 1000 * MiB);  // never more than its RAM
  EXPECT_EQ(n.free, 1000 * MiB);
  EXPECT_EQ(n.cache, Bytes(0));
}

TEST(Pool, AnUnresponsiveMemberIsCountedOnForNothing) {
  Pool pool = MakePool(100 * MiB);
  auto p = std::make_shared<FakeMember>("p", MemberKind::kPartition, 100 * MiB, 90 * MiB);
  auto v = std::make_shared<FakeMember>("v", MemberKind::kVm, 100 * MiB, 90 * MiB);
  v->Set(false, 10 * MiB);  // stuck with 10 MiB loaned
  ASSERT_TRUE(pool.Add(p, {}).has_value());
  ASSERT_TRUE(pool.Add(v, {}).has_value());
  pool.Rebalance();
  EXPECT_EQ(v->last().target_loaned_bytes, 10 * MiB);  // keeps what it has, asked for no more
  EXPECT_GE(p->last().target_loaned_bytes, 67 * MiB);  // the responsive one gives from its idle memory
  // Room comes back: still nothing for the stuck one, it cannot take it.
  pool.Remove(*p);
  pool.Rebalance();
  EXPECT_EQ(v->last().target_loaned_bytes, 10 * MiB);
}

TEST(Pool, AWeightChangeReachesTheMemberAtOnce) {
  Pool pool = MakePool(100 * MiB);
  auto p = std::make_shared<FakeMember>("p", MemberKind::kVm, 64 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(p, {}).has_value());
  SettingsChange c;
  c.weight = 200;
  ASSERT_TRUE(pool.Configure("p", c).has_value());
  EXPECT_EQ(p->last().weight, 200);
  EXPECT_EQ(pool.Configure("q", c).error().message, "no partition or VM named q");
}

TEST(Rebalancer, RunsThePolicyEveryPeriodAndTheHookAfterEachRound) {
  Pool pool = MakePool(100 * MiB);
  auto p = std::make_shared<FakeMember>("p", MemberKind::kVm, 200 * MiB, 190 * MiB);
  ASSERT_TRUE(pool.Add(p, {}).has_value());
  std::atomic<int> rounds{0};
  {
    Rebalancer r(pool, 10ms, [&] { ++rounds; });
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (rounds < 3 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(rounds.load(), 3);
  EXPECT_GE(p->assignments(), 4);  // its joining, then each round
  EXPECT_GE(p->last().target_loaned_bytes, 100 * MiB);
  const int after = rounds.load();
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(rounds.load(), after);  // destroyed: it runs no more
}

TEST(Pool, APoolAutoShrunkBelowTheFloorsIsReportedAndItsMembersHeldThere) {
  Bytes host = 300 * MiB;  // what --pool auto would see
  PoolOptions o;
  o.pool_bytes = host;
  o.sizer = [&host](Bytes) { return host; };
  Pool pool(o);
  std::vector<std::shared_ptr<FakeMember>> members;
  for (const char* name : {"a", "b", "c"}) {
    members.push_back(std::make_shared<FakeMember>(name, MemberKind::kPartition, 100 * MiB, 50 * MiB));
    ASSERT_TRUE(pool.Add(members.back(), {0, 80 * MiB, Bytes(0)}).has_value());
  }
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().shortfall_bytes, Bytes(0));
  EXPECT_EQ(ShortfallMessage(pool.feasibility()), "");
  host = 200 * MiB;  // the host came under pressure
  for (int round = 0; round < 3; ++round) {
    pool.Rebalance();
    EXPECT_EQ(pool.feasibility().shortfall_bytes, 40 * MiB);
    for (const auto& m : members) EXPECT_EQ(m->last().target_loaned_bytes, 20 * MiB);  // at the floor, steadily
  }
  EXPECT_EQ(ShortfallMessage(pool.feasibility()),
            "pool 200 MiB cannot be met: members' floors need 240 MiB; lower min_mem_mb or grow the pool");
  host = 400 * MiB;
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().shortfall_bytes, Bytes(0));
}

TEST(Pool, AMemberJoiningAFullPoolStartsWithItsBalloonHoldingWhatThePoolCannotGive) {
  Pool pool = MakePool(150 * MiB);
  auto a = std::make_shared<FakeMember>("a", MemberKind::kPartition, 100 * MiB, 90 * MiB);
  auto b = std::make_shared<FakeMember>("b", MemberKind::kVm, 100 * MiB, 90 * MiB);
  ASSERT_TRUE(pool.Add(a, {}).has_value());
  EXPECT_EQ(a->last().target_loaned_bytes, Bytes(0));
  EXPECT_TRUE(pool.HasRoomFor(100 * MiB, {0, 50 * MiB, Bytes(0)}));
  EXPECT_FALSE(pool.HasRoomFor(100 * MiB, {0, 60 * MiB, Bytes(0)}));
  ASSERT_TRUE(pool.Add(b, {}).has_value());
  EXPECT_EQ(b->last().target_loaned_bytes, 50 * MiB);  // 50 MiB of room
}

// Issue 25: "a member that joins while in use (a VM attached, a domain
// adopted, a partition restarted) starts from its current use plus a
// buffer, never from loan all it has above its floor".
TEST(Pool, AMemberThatJoinsInUseStartsFromItsUsePlusABufferNotFromItsFloor) {
  Pool pool = MakePool(640 * MiB);
  auto a = std::make_shared<FakeMember>("a", MemberKind::kPartition, 512 * MiB, 400 * MiB);
  ASSERT_TRUE(pool.Add(a, {}).has_value());  // 128 MiB of room left
  // A running VM of 512 MiB that says it uses 394 MiB (118 MiB free), its
  // floor 128 MiB: it keeps 394 MiB and a quarter more (492 MiB).
  auto vm = std::make_shared<FakeMember>("vm", MemberKind::kVm, 512 * MiB, 118 * MiB);
  vm->Running(450 * MiB, true);
  ASSERT_TRUE(pool.Add(vm, {0, 128 * MiB, Bytes(0)}).has_value());
  const Bytes loan = vm->last().target_loaned_bytes;
  EXPECT_LE(loan, 512 * MiB - (394 * MiB + 394 * MiB / 4));
  EXPECT_GE(loan, 512 * MiB - (394 * MiB + 394 * MiB / 4) - MiB);
  // Without stats yet, the host memory behind it now is what it uses.
  auto dom = std::make_shared<FakeMember>("dom", MemberKind::kDomain, 512 * MiB, Bytes(0));
  dom->Running(300 * MiB, false);
  ASSERT_TRUE(pool.Add(dom, {0, 128 * MiB, Bytes(0)}).has_value());
  EXPECT_LE(dom->last().target_loaned_bytes, 512 * MiB - 375 * MiB);
  // The others make room at the next round: the pool is not left over.
  a->Set(true, Bytes(0));
  pool.Rebalance();
  EXPECT_GT(a->last().target_loaned_bytes, Bytes(0));
}

// Issue 25: "a small pool reserve may absorb what is taken back on OOM".
TEST(Pool, AfterAnOomGiveBackThePoolKeepsThatMuchBackAndSaysSo) {
  Pool pool = MakePool(150 * MiB);
  auto a = std::make_shared<FakeMember>("a", MemberKind::kPartition, 100 * MiB, 90 * MiB);
  auto b = std::make_shared<FakeMember>("b", MemberKind::kVm, 100 * MiB, 90 * MiB);
  ASSERT_TRUE(pool.Add(a, {}).has_value());
  ASSERT_TRUE(pool.Add(b, {}).has_value());
  b->Set(true, 50 * MiB);
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, Bytes(0));
  b->TookBackOnOom(40 * MiB);  // 10 MiB taken back
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, 10 * MiB);
  // What is handed out stays 10 MiB short of the pool from now on.
  a->Set(true, a->last().target_loaned_bytes);
  b->Set(true, b->last().target_loaned_bytes);
  pool.Rebalance();
  const Bytes assigned = 200 * MiB - a->last().target_loaned_bytes - b->last().target_loaned_bytes;
  EXPECT_LE(assigned, 140 * MiB);
  // A larger give-back is kept back only up to a tenth of the pool.
  b->TookBackOnOom(b->last().target_loaned_bytes - 30 * MiB);
  pool.Rebalance();
  EXPECT_EQ(pool.feasibility().giveback_reserve_bytes, 15 * MiB);
}

// A restart loses no term (the words): the terms kept from before
// replace a joining member's own when they fit its RAM, and every change of
// terms, and every leaving, is told to the keeper outside the pool's lock.
TEST(Pool, KeptTermsReplaceAJoiningMembersOwnAndEveryChangeIsTold) {
  std::vector<std::string> told;
  PoolOptions o;
  o.pool_bytes = 256 * MiB;
  o.kept_terms = [](const std::string& name) -> std::optional<MemberSettings> {
    if (name == "web1") return MemberSettings{9, 32 * MiB, 96 * MiB};
    if (name == "huge") return MemberSettings{1, 512 * MiB, Bytes(0)};  // more than its RAM
    return std::nullopt;
  };
  Pool* self = nullptr;
  o.on_terms = [&](const std::string& name, const MemberSettings& t) {
    // Outside the lock: the pool may be asked again from here.
    if (self != nullptr) (void)self->Snapshot();
    told.push_back(fmt::format("{} w{} min{} max{}", name, t.weight, t.min_bytes / MiB, t.max_bytes / MiB));
  };
  o.on_left = [&](const std::string& name) { told.push_back(name + " left"); };
  Pool pool(o);
  self = &pool;
  auto web1 = std::make_shared<FakeMember>("web1", MemberKind::kVm, 128 * MiB, Bytes(0));
  auto huge = std::make_shared<FakeMember>("huge", MemberKind::kPartition, 128 * MiB, Bytes(0));
  auto db1 = std::make_shared<FakeMember>("db1", MemberKind::kPartition, 64 * MiB, Bytes(0));
  ASSERT_TRUE(pool.Add(web1, {1, Bytes(0), Bytes(0)}).has_value());
  ASSERT_TRUE(pool.Add(huge, {2, Bytes(0), Bytes(0)}).has_value());
  ASSERT_TRUE(pool.Add(db1, {3, 8 * MiB, Bytes(0)}).has_value());
  ASSERT_TRUE(pool.Configure("db1", SettingsChange{7, std::nullopt, std::nullopt}).has_value());
  EXPECT_FALSE(pool.Configure("db1", SettingsChange{std::nullopt, 65 * MiB, std::nullopt}).has_value());
  pool.Remove(*huge);
  pool.Remove(*huge);  // not there any more: nothing told
  EXPECT_EQ(told, (std::vector<std::string>{"web1 w9 min32 max96", "huge w2 min0 max0", "db1 w3 min8 max0",
                                            "db1 w7 min8 max0", "huge left"}));
  EXPECT_EQ(web1->last().weight, 9);
}

}  // namespace
}  // namespace cmm::hv
