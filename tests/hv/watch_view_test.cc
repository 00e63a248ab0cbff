// Issue 13: `cmm hv watch` draws the pool bar and every member's row,
// sorted by a key the user can change; without a terminal, one line.
#include <gtest/gtest.h>

#include "hv/status.h"
#include "hv/watch_view.h"

namespace cmm::hv {
namespace {

constexpr Bytes MiB = cmm::MiB(1);

MemberView Member(const std::string& name, Bytes ram, Bytes backing) {
  MemberView m;
  m.name = name;
  m.ram_bytes = ram;
  m.backing_bytes = backing;
  m.stats.free_bytes = ram - backing;  // it uses what the host backs
  m.stats.taken = MemberClock::now();
  return m;
}

size_t Line(const std::string& frame, const std::string& text) { return frame.find(text); }

TEST(WatchFrame, RowsAreSortedByTheChosenKeyAndTheBarShowsBackingAgainstThePool) {
  const auto status = Status(100 * MiB, {}, {Member("alpha", 64 * MiB, 10 * MiB), Member("beta", 64 * MiB, 40 * MiB)});
  const std::string by_name = WatchFrame(status, {}, {"name", false}, 80, "12:00:00");
  EXPECT_LT(Line(by_name, "\nalpha"), Line(by_name, "\nbeta"));
  EXPECT_NE(by_name.find("sorted by name |"), std::string::npos);
  const std::string by_backing = WatchFrame(status, {}, {"backing_bytes", true}, 80, "12:00:00");
  EXPECT_LT(Line(by_backing, "\nbeta"), Line(by_backing, "\nalpha"));
  EXPECT_NE(by_backing.find("sorted by backing, largest first"), std::string::npos);
  // 50 of 100 MiB: half the bar filled.
  const size_t bar = by_name.find("pool [");
  ASSERT_NE(bar, std::string::npos);
  const std::string inside = by_name.substr(bar + 6, by_name.find(']', bar) - bar - 6);
  EXPECT_NEAR(std::count(inside.begin(), inside.end(), '#') * 2, static_cast<long>(inside.size()), 1) << inside;
  EXPECT_NE(by_name.find("50 MiB of 100 MiB (50%)"), std::string::npos);
  EXPECT_NE(by_name.find("(no events yet)"), std::string::npos);
  // Every line fits the terminal.
  size_t start = 0;
  for (size_t end; (end = by_name.find('\n', start)) != std::string::npos; start = end + 1) EXPECT_LE(end - start, 80U);
}

TEST(WatchFrame, AnOverPoolAnInfeasiblePoolAndEventsShow) {
  const auto status = Status(32 * MiB, {32 * MiB, 48 * MiB, 16 * MiB}, {Member("alpha", 64 * MiB, 40 * MiB)});
  const std::string frame =
      WatchFrame(status, {"12:00:01 alpha joined", "12:00:02 alpha: 1 OOM event"}, {"name", false}, 160, "12:00:03");
  EXPECT_NE(frame.find("] 40 MiB of 32 MiB (125%) OVER"), std::string::npos) << frame;
  EXPECT_NE(frame.find("cannot be met: members' floors need 48 MiB"), std::string::npos);
  EXPECT_NE(frame.find("12:00:02 alpha: 1 OOM event"), std::string::npos);
  EXPECT_NE(frame.find("TARGET"), std::string::npos) << "a wide terminal shows every column";
}

TEST(WatchLine, OneLineWithThePoolAndEachMember) {
  const auto status = Status(100 * MiB, {}, {Member("alpha", 64 * MiB, 10 * MiB), Member("beta", 64 * MiB, 40 * MiB)});
  EXPECT_EQ(WatchLine(status, "12:00:00"),
            "12:00:00 pool 100 MiB, backing 50 MiB (50%), loaned 0 B, 2 members, 0 OOM events | alpha 10 MiB at target "
            "| beta 40 MiB at target");
}

// Issue 25: the members' use above the pool is said in the line too.
TEST(WatchLine, SaysWhenWhatTheMembersUseIsAboveThePool) {
  const auto status = Status(64 * MiB, {}, {Member("alpha", 64 * MiB, 10 * MiB), Member("beta", 64 * MiB, 60 * MiB)});
  EXPECT_NE(WatchLine(status, "12:00:00")
                .find("| members use 70 MiB, the pool is 64 MiB: 6 MiB short; beta 60 MiB, alpha 10 MiB |"),
            std::string::npos)
      << WatchLine(status, "12:00:00");
}

TEST(SortKeys, EachKeySortsByAFieldTheStatusHas) {
  const auto status = StatusJson(100 * MiB, {}, {Member("alpha", 64 * MiB, 10 * MiB)});
  for (const auto& k : SortKeys()) {
    EXPECT_TRUE(status["partitions"][0].contains(k.field)) << k.field;
    EXPECT_EQ(FindSortKey(k.key), &k);
    EXPECT_EQ(FindSortLabel(k.label), &k);
  }
  EXPECT_EQ(FindSortKey('q'), nullptr);
  EXPECT_EQ(FindSortLabel("bogus"), nullptr);
}

}  // namespace
}  // namespace cmm::hv
