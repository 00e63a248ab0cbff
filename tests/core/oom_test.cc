// S6: the OOM notifier.
#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

TEST(Oom, S6_DeflatesOomKbAndCountsFreed) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(600)), Pages(0));
  Pages freed(5);
  r.ctrl.OnOom(freed);
  EXPECT_EQ(freed, Pages(5 + 256));  // 1024 kB of 4 KiB pages, added to the caller's count
  EXPECT_EQ(r.ctrl.loaned(), Pages(344));
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(344));
  EXPECT_EQ(r.ctrl.oom_freed(), Pages(256));
  EXPECT_EQ(r.mem.Totalram(), Pages(1024 - 344));
}

TEST(Oom, S6_CountsOnlyPagesActuallyFreed) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(100)), Pages(0));
  Pages freed(0);
  r.ctrl.OnOom(freed);
  EXPECT_EQ(freed, Pages(100));
  EXPECT_EQ(r.ctrl.oom_freed(), Pages(100));
  r.ctrl.OnOom(freed);  // nothing left to give
  EXPECT_EQ(freed, Pages(100));
  EXPECT_EQ(r.ctrl.oom_freed(), Pages(100));
}

TEST(Oom, S6_OomFreedLowersEveryLaterTargetUntilReset) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.ctrl.params().oom_kb = 40;  // 10 pages
  r.Request(300 * 4096);
  r.Round();
  ASSERT_EQ(r.ctrl.loaned(), Pages(300));
  Pages freed(0);
  r.ctrl.OnOom(freed);
  r.ctrl.OnOom(freed);
  ASSERT_EQ(r.ctrl.oom_freed(), Pages(20));
  for (int i = 0; i < 3; ++i) {
    r.Request(0);
    r.Round();
    // The loaned pages stay, minus 20 every round: loaned + 0 - oom_freed.
    EXPECT_EQ(r.ctrl.loaned(), Pages(280 - 20 * (i + 1)));
  }
  ASSERT_TRUE(r.ctrl.files().Write("oom_freed_kb", "0", Writer{true}).has_value());
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(220));
}

TEST(Oom, S6_OomKbParameterSetsTheAmount) {
  Rig r(1024, Rig::Defaults(), 65536);
  ASSERT_EQ(r.ctrl.Inflate(Pages(100)), Pages(0));
  r.ctrl.params().oom_kb = 640;  // ten 64 KiB pages
  Pages freed(0);
  r.ctrl.OnOom(freed);
  EXPECT_EQ(freed, Pages(10));
}

}  // namespace cmm::testing
