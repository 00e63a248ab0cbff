// S3: the poll loop, driven step by step with a fake clock.
#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

using std::chrono::seconds;
constexpr int64_t kPage = 4096;

TEST(Poll, S3_FirstActIsToSleepDelaySeconds) {
  Rig r(1024);
  r.Request(10 * kPage);
  ASSERT_EQ(r.ctrl.Start(), 0);
  const TimePoint t0 = r.clock.Now();
  EXPECT_EQ(r.ctrl.Poll(t0), t0 + seconds(1));
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  EXPECT_EQ(r.ctrl.Poll(t0 + seconds(1) - std::chrono::nanoseconds(1)), t0 + seconds(1));  // early wake: nothing
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  r.clock.Set(t0 + seconds(1));
  EXPECT_EQ(r.ctrl.Poll(r.clock.Now()), t0 + seconds(2));
  EXPECT_EQ(r.hv.get_mpp_calls, 1);
  EXPECT_EQ(r.ctrl.loaned(), Pages(10));
}

TEST(Poll, S3_DelayParameterSetsThePeriod) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.ctrl.params().delay = 7;
  r.RunFor(seconds(70));
  EXPECT_EQ(r.hv.get_mpp_calls, 10);
}

TEST(Poll, S3_DelayZeroStillSleepsOneSchedulerTickAndNeverSpins) {
  Rig r(1024);
  r.ctrl.params().delay = 0;
  ASSERT_EQ(r.ctrl.Start(), 0);
  const TimePoint t0 = r.clock.Now();
  const TimePoint first = r.ctrl.Poll(t0);  // the first act is the sleep
  EXPECT_EQ(first, t0 + kSchedulerTick);
  EXPECT_EQ(r.ctrl.Poll(t0), first) << "woken before the tick: nothing";
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  r.clock.Set(first);
  EXPECT_EQ(r.ctrl.Poll(first), first + kSchedulerTick);
  EXPECT_EQ(r.hv.get_mpp_calls, 1);
  // A second of delay=0 is one H_GET_MPP per tick: 250, not a spin.
  r.RunFor(seconds(1));
  EXPECT_EQ(r.hv.get_mpp_calls, 251);
}

TEST(Poll, S3_HotplugDelayZeroPausesOneTick) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.ctrl.params().hotplug_delay = 0;
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  const TimePoint t0 = r.clock.Now();
  // t0+1: the round sees "occurred" and pauses one tick, then sleeps 1 s.
  r.RunFor(seconds(1));
  EXPECT_EQ(r.ctrl.Poll(r.clock.Now()), t0 + seconds(1) + kSchedulerTick);
  r.RunFor(seconds(1) + kSchedulerTick);
  EXPECT_EQ(r.hv.get_mpp_calls, 1);
  EXPECT_EQ(r.clock.Now(), t0 + seconds(2) + kSchedulerTick);
}

TEST(Poll, S3_InflatesThenDeflatesTowardTarget) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.Request(100 * kPage);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(100));
  EXPECT_EQ(r.mem.Totalram(), Pages(924));
  r.Request(0);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(100));
  r.Request(-40 * kPage);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(60));
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(60));
  EXPECT_EQ(r.mem.Totalram(), Pages(964));
}

TEST(Poll, S3_UnfulfilledInflateResetsTargetToLoanedBefore) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.Request(10 * kPage);
  r.Round();
  ASSERT_EQ(r.ctrl.loaned(), Pages(10));
  int budget = 5;
  r.mem.before_alloc = [&] { r.mem.allow_alloc = budget-- > 0; };
  r.Request(50 * kPage);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(15));
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(10));  // loaned as read before inflating
}

TEST(Poll, S3_GetMppFailureStillMovesTowardPreviousTarget) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.Request(10 * kPage);
  r.Round();
  ASSERT_EQ(r.ctrl.Deflate(Pages(3)), Pages(0));  // loaned 7, target still 10
  r.hv.get_mpp_rc = papr::kFunction;
  r.Request(100 * kPage);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(10));
  EXPECT_EQ(r.ctrl.loaned(), Pages(10));
}

TEST(Poll, S3_HotplugInProgressSkipsRounds) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.Request(10 * kPage);
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.RunFor(seconds(5));
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
}

TEST(Poll, S3_AfterHotplugPausesHotplugDelayThenDelay) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.Request(10 * kPage);
  const TimePoint t0 = r.clock.Now();
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  // t0+1: the round sees "occurred", clears it and pauses 5 s; then sleeps 1 s.
  r.RunFor(seconds(6));
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  r.RunFor(seconds(1));  // t0+7: the first real round
  EXPECT_EQ(r.hv.get_mpp_calls, 1);
  EXPECT_EQ(r.clock.Now(), t0 + seconds(7));
  EXPECT_EQ(r.ctrl.loaned(), Pages(10));
}

TEST(Poll, S3_HotplugDelayParameterIsUsed) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.ctrl.params().hotplug_delay = 30;
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.ctrl.OnMemoryEvent(MemoryAction::kCancelOffline);
  r.RunFor(seconds(31));
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  r.RunFor(seconds(1));
  EXPECT_EQ(r.hv.get_mpp_calls, 1);
}

}  // namespace cmm::testing
