// Which rises of a VM's guest memory are its deflate-on-oom: a rise past what
// was asked, except the answer to a higher ask the guest was still rising
// toward when it was lowered (QEMU's BALLOON_CHANGE may come a second late).
#include "members/virtio/balloon_follow.h"
#include "members/virtio/unresponsive.h"

#include <gtest/gtest.h>

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t kMiB = 1 << 20;

TEST(BalloonFollow, ARiseAfterTheGuestReachedItsAskIsAnOomGiveBackEvenRightAfterALowering) {
  // The guest sits at all of its 256 MiB; 96 is asked; it inflates to 100,
  // then fills and takes 103 MiB back, all within a second of the ask.
  const MemberClock::time_point t0{};
  BalloonFollow f(256 * kMiB);
  f.Asked(96 * kMiB, t0);
  EXPECT_EQ(f.Seen(100 * kMiB, t0 + 300ms), 0U);
  EXPECT_EQ(f.Seen(203 * kMiB, t0 + 900ms), 103 * kMiB);
  EXPECT_EQ(f.actual(), 203 * kMiB);
  EXPECT_EQ(f.asked(), 96 * kMiB);
}

TEST(BalloonFollow, ALateAnswerToAHigherAskStillBeingReachedIsNotAnOom) {
  const MemberClock::time_point t0{};
  BalloonFollow f(100 * kMiB);
  f.Asked(200 * kMiB, t0);  // deflate: the guest rises toward 200
  EXPECT_EQ(f.Seen(150 * kMiB, t0 + 1s), 0U);
  f.Asked(96 * kMiB, t0 + 1100ms);  // lowered while it was still rising
  EXPECT_EQ(f.Seen(180 * kMiB, t0 + 2s), 0U);  // a late event: still the old ask
  EXPECT_EQ(f.Seen(120 * kMiB, t0 + 2500ms), 0U);
  // Past the window, a rise above the new ask is the guest's own.
  EXPECT_EQ(f.Seen(130 * kMiB, t0 + 4s), 10 * kMiB);
}

TEST(BalloonFollow, OnlyThePartAboveTheAskIsTakenBack) {
  const MemberClock::time_point t0{};
  BalloonFollow f(100 * kMiB);
  f.Asked(120 * kMiB, t0);
  EXPECT_EQ(f.Seen(110 * kMiB, t0 + 5s), 0U);
  EXPECT_EQ(f.Seen(150 * kMiB, t0 + 6s), 30 * kMiB);  // 110 -> 120 was asked
  EXPECT_EQ(f.Seen(140 * kMiB, t0 + 7s), 0U);         // falling is never a give-back
}

TEST(BalloonFollow, TwoLoweringsInTheWindowKeepTheHighestAskNotYetReached) {
  const MemberClock::time_point t0{};
  BalloonFollow f(100 * kMiB);
  f.Asked(250 * kMiB, t0);
  f.Asked(200 * kMiB, t0 + 500ms);
  f.Asked(96 * kMiB, t0 + 1s);
  EXPECT_EQ(f.Seen(240 * kMiB, t0 + 2s), 0U);  // still the 250 asked at t0
  EXPECT_EQ(f.Seen(256 * kMiB, t0 + 2500ms), 6 * kMiB);
}

// Issue 25: "a member that is taking memory back on OOM is not called
// unresponsive for not following its target" (the VM flapped every 2.5 s).
TEST(BalloonWatch, AGuestHoldingWhatItTookBackOnOomIsNotUnresponsiveUntilItIsAskedAnew) {
  const MemberClock::time_point t0{};
  BalloonFollow f(256 * kMiB);
  f.Asked(96 * kMiB, t0);
  EXPECT_EQ(f.Seen(96 * kMiB, t0 + 1s), 0U);
  EXPECT_GT(f.Seen(200 * kMiB, t0 + 2s), 0U);  // deflate-on-oom
  BalloonWatch w;
  w.period = std::chrono::milliseconds(500);
  w.stale_periods = 3;
  w.stats_ever = true;
  w.moved = t0 + 2s;
  for (auto t = t0 + 2s; t < t0 + 30s; t += 500ms) {
    w.stats_seen = t;
    EXPECT_EQ(WhyUnresponsive(w, f, t), "") << "at " << (t - t0).count();
  }
  // Asked anew (the policy gave it a new target): now it must follow.
  f.Asked(150 * kMiB, t0 + 30s);
  w.moved = t0 + 30s;
  w.stats_seen = t0 + 32s;
  EXPECT_EQ(WhyUnresponsive(w, f, t0 + 32s), "balloon at 200 MiB does not move toward 150 MiB");
  // A balloon below its ask that does not move is still said at once.
  BalloonFollow g(256 * kMiB);
  g.Asked(96 * kMiB, t0);
  EXPECT_EQ(g.Seen(200 * kMiB, t0 + 1s), 0U);  // on its way down, then stuck
  w.moved = t0 + 1s;
  w.stats_seen = t0 + 3s;
  EXPECT_EQ(WhyUnresponsive(w, g, t0 + 3s), "balloon at 200 MiB does not move toward 96 MiB");
}

}  // namespace
}  // namespace cmm::hv
