// Issue 13: the pool's recent history and events, kept by the hypervisor
// for a page opened late (a bounded ring), and the one-word status of a
// member the page and `cmm hv watch` show.
#include <gtest/gtest.h>

#include "pool/monitor.h"
#include "hv/status.h"

namespace cmm::hv {
namespace {

constexpr Bytes MiB = cmm::MiB(1);

MemberView Member(const std::string& name, Bytes ram, Bytes loaned, Bytes target) {
  MemberView m;
  m.name = name;
  m.ram_bytes = ram;
  m.loaned_bytes = loaned;
  m.target_loaned_bytes = target;
  m.backing_bytes = ram - loaned;
  m.stats.taken = MemberClock::now();
  return m;
}

std::vector<std::string> Kinds(const std::vector<PoolEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.kind + (e.member.empty() ? "" : ":" + e.member));
  return out;
}

TEST(PoolMonitor, AJoinAnOomEventAReachedTargetAndALeaveAreEventsInOrder) {
  PoolMonitor m;
  const Feasibility ok{512 * MiB, Bytes(0), Bytes(0)};
  auto a = Member("a", 256 * MiB, Bytes(0), 64 * MiB);
  m.Observe(1000, 512 * MiB, ok, {a});
  a.loaned_bytes = 64 * MiB;
  a.backing_bytes = 192 * MiB;
  a.stats.oom_events = 2;
  m.Observe(2000, 512 * MiB, ok, {a});
  m.Observe(3000, 512 * MiB, ok, {a});  // nothing new
  m.Observe(4000, 512 * MiB, ok, {});
  const auto events = m.EventsAfter(0);
  EXPECT_EQ(Kinds(events), (std::vector<std::string>{"joined:a", "oom:a", "reached:a", "left:a"}));
  EXPECT_EQ(events[1].text, "a: 2 OOM events (2 in all)");
  EXPECT_EQ(events[0].unix_ms, 1000);
  // A reader asks only for what it has not seen.
  EXPECT_EQ(Kinds(m.EventsAfter(events[1].seq)), (std::vector<std::string>{"reached:a", "left:a"}));
  EXPECT_TRUE(m.EventsAfter(events[3].seq).empty());
}

TEST(PoolMonitor, GoingOverThePoolAndBackAndAnInfeasiblePoolAreEvents) {
  PoolMonitor m;
  auto a = Member("a", 256 * MiB, Bytes(0), Bytes(0));
  m.Observe(1000, 512 * MiB, {}, {a});
  m.Observe(2000, 128 * MiB, {128 * MiB, 192 * MiB, 64 * MiB}, {a});  // shrunk under the floors
  m.Observe(3000, 512 * MiB, {}, {a});
  const auto events = m.EventsAfter(1);
  ASSERT_EQ(Kinds(events), (std::vector<std::string>{"over", "infeasible", "within", "feasible"}));
  EXPECT_EQ(events[0].text, "the members back 256 MiB, 128 MiB over the pool of 128 MiB");
  EXPECT_EQ(events[1].text,
            "pool 128 MiB cannot be met: members' floors need 192 MiB; lower min_mem_mb or grow the pool");
}

TEST(PoolMonitor, AMemberThatStopsAnsweringAndAnswersAgainIsTwoEvents) {
  PoolMonitor m;
  auto a = Member("a", 64 * MiB, Bytes(0), Bytes(0));
  m.Observe(0, 512 * MiB, {}, {a});
  a.responsive = false;
  a.note = "no stats for 5 s";
  m.Observe(1000, 512 * MiB, {}, {a});
  a.responsive = true;
  m.Observe(2000, 512 * MiB, {}, {a});
  const auto events = m.EventsAfter(1);
  ASSERT_EQ(Kinds(events), (std::vector<std::string>{"unresponsive:a", "responsive:a"}));
  EXPECT_EQ(events[0].text, "a is unresponsive: no stats for 5 s");
}

TEST(PoolMonitor, HistoryKeepsOneSampleASecondForFifteenMinutesThenDropsTheOldest) {
  PoolMonitor m;
  const auto a = Member("a", 64 * MiB, 16 * MiB, 16 * MiB);
  // Rounds every 250 ms for 20 minutes.
  for (int64_t t = 0; t <= 20 * 60 * 1000; t += 250) m.Observe(t, 512 * MiB, {}, {a});
  const auto all = m.SamplesSince(0);
  ASSERT_EQ(all.size(), 15U * 60 + 1);
  // Each second's sample is its last round's.
  EXPECT_EQ(all.front().unix_ms, 5 * 60 * 1000 + 750);
  EXPECT_EQ(all.back().unix_ms, 20 * 60 * 1000);
  EXPECT_EQ(all.back().backing_bytes, AsUnsigned(48 * MiB));
  EXPECT_EQ(all.back().loaned_bytes, AsUnsigned(16 * MiB));
  EXPECT_EQ(all.back().members, 1U);
  EXPECT_EQ(m.SamplesSince(20 * 60 * 1000).size(), 1U);
  EXPECT_EQ(m.SamplesSince(20 * 60 * 1000 + 1).size(), 0U);
}

TEST(PoolMonitor, EventsAreBounded) {
  PoolMonitor m(std::chrono::minutes(15), 10);
  for (int i = 0; i < 30; ++i) m.Observe(i * 1000, 512 * MiB, {}, i % 2 ? std::vector<MemberView>{} : std::vector{Member("a", MiB * 64, Bytes(0), Bytes(0))});
  const auto events = m.EventsAfter(0);
  ASSERT_EQ(events.size(), 10U);
  EXPECT_EQ(events.back().seq, 30U);
}

TEST(Condition, SaysUnresponsiveStartingInflatingDeflatingAtItsFloorOrAtTarget) {
  auto m = Member("a", 256 * MiB, Bytes(0), Bytes(0));
  EXPECT_EQ(Condition(m), "at target");
  m.target_loaned_bytes = 64 * MiB;
  EXPECT_EQ(Condition(m), "inflating");
  m.loaned_bytes = 62 * MiB;  // within the settle band (4 MiB here)
  EXPECT_EQ(Condition(m), "at target");
  m.target_loaned_bytes = Bytes(0);
  EXPECT_EQ(Condition(m), "deflating");
  m.settings.min_bytes = 192 * MiB;
  m.target_loaned_bytes = 64 * MiB;
  EXPECT_EQ(Condition(m), "at its floor");
  m.stats.taken = {};
  EXPECT_EQ(Condition(m), "starting");
  m.responsive = false;
  EXPECT_EQ(Condition(m), "unresponsive");
}

TEST(StatusJson, CarriesEachMembersConditionAndTheProblemWhenInfeasible) {
  const auto j = StatusJson(128 * MiB, {128 * MiB, 192 * MiB, 64 * MiB}, {Member("a", 64 * MiB, Bytes(0), 32 * MiB)});
  EXPECT_EQ(j["partitions"][0]["condition"], "inflating");
  EXPECT_EQ(j["backing_bytes"], AsUnsigned(64 * MiB));
  EXPECT_EQ(j["shortfall_bytes"], AsUnsigned(64 * MiB));
  EXPECT_TRUE(j.contains("problem"));
}

}  // namespace
}  // namespace cmm::hv

namespace cmm::hv {
namespace {

// The typed status: what StatusJson writes reads back field for field, and
// a feasible pool's document has no "problem" at all.
TEST(StatusJson, ReadsBackAsTheTypedStatusAndLeavesOutAProblemThereIsNot) {
  MemberView m = Member("a", 64 * MiB, 16 * MiB, 32 * MiB);
  m.counts.batches = 3;
  m.settings.weight = 200;
  const auto j = StatusJson(128 * MiB, {}, {m});
  EXPECT_FALSE(j.contains("problem"));
  const auto s = j.get<HvStatus>();
  EXPECT_EQ(s.pool_bytes, AsUnsigned(128 * MiB));
  ASSERT_EQ(s.partitions.size(), 1U);
  EXPECT_EQ(s.partitions[0].name, "a");
  EXPECT_EQ(s.partitions[0].kind, "partition");
  EXPECT_EQ(s.partitions[0].weight, 200U);
  EXPECT_EQ(s.partitions[0].hcalls.batches, 3U);
  EXPECT_EQ(s.partitions[0].max_bytes, AsUnsigned(64 * MiB));  // no ceiling set: all of its RAM
  EXPECT_TRUE(s.problem.empty());
  nlohmann::json again = s;
  again.erase("problem");
  again.erase("notes");
  EXPECT_EQ(again, j);
  EXPECT_EQ(PressureText(s.partitions[0]), "");  // it reported none
  m.stats.swapped_in = 8 * MiB;
  m.stats.major_faults = 300;
  m.stats.reclaimed = 12 * MiB;
  const auto pressed = StatusJson(128 * MiB, {}, {m}).get<HvStatus>();
  EXPECT_EQ(pressed.partitions[0].reclaimed_bytes, AsUnsigned(12 * MiB));
  EXPECT_EQ(PressureText(pressed.partitions[0]), "swapped in 8 MiB, 300 major faults, reclaimed 12 MiB");
  m.stats.swapped_in = Bytes(0);
  m.stats.major_faults = 0;
  EXPECT_EQ(PressureText(StatusJson(128 * MiB, {}, {m}).get<HvStatus>().partitions[0]), "reclaimed 12 MiB");
  const auto infeasible = StatusJson(128 * MiB, {128 * MiB, 192 * MiB, 64 * MiB}, {m}).get<HvStatus>();
  EXPECT_NE(infeasible.problem.find("cannot be met"), std::string::npos);
}

// "A domain without a balloon is skipped with a log line and a status
// note": the pool keeps such notes by key until withdrawn, and status
// carries them (none: no "notes" at all).
TEST(StatusJson, CarriesThePoolsNotesUntilTheyAreWithdrawn) {
  PoolOptions o;
  o.pool_bytes = 128 * MiB;
  Pool pool(o);
  EXPECT_FALSE(StatusJson(pool).contains("notes"));
  pool.Note("domain b", "domain b is not managed: it has no balloon");
  pool.Note("domain a", "domain a is not managed: it has no balloon");
  pool.Note("domain a", "domain a is not managed: it has no balloon");  // said again: still one
  auto s = StatusJson(pool).get<HvStatus>();
  ASSERT_EQ(s.notes.size(), 2U);
  EXPECT_EQ(s.notes[0], "domain a is not managed: it has no balloon");
  pool.Note("domain a", "");
  s = StatusJson(pool).get<HvStatus>();
  ASSERT_EQ(s.notes.size(), 1U);
  EXPECT_EQ(s.notes[0], "domain b is not managed: it has no balloon");
  pool.Note("domain b", "");
  EXPECT_FALSE(StatusJson(pool).contains("notes"));
}

}  // namespace
}  // namespace cmm::hv
