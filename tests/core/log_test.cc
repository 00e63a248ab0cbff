// S14: debug log lines.
#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

TEST(Log, S14_NothingWithDebugOff) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 10 * 4096;
  r.Round();
  Pages freed(0);
  r.ctrl.OnOom(freed);
  EXPECT_TRUE(r.log.info.empty());
}

TEST(Log, S14_RoundLinesWithDebugOn) {
  ParamValues p = Rig::Defaults();
  p.debug = 1;
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 10 * 4096;
  r.Round();
  const std::vector<std::string> want{
      "cmm: delta = 10, loaned = 0, target = 10, oom = 0, totalram = 1024",
      "cmm: Begin request for 10 pages",
      "cmm: End request with 0 pages unfulfilled",
  };
  EXPECT_EQ(r.log.info, want);
  for (const auto& l : r.log.info) EXPECT_EQ(l.rfind("cmm: ", 0), 0U);
}

TEST(Log, S14_DeflateOomAndHotplugLines) {
  ParamValues p = Rig::Defaults();
  p.debug = 1;
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Start(), 0);
  ASSERT_EQ(r.ctrl.Inflate(Pages(300)), Pages(0));
  r.log.info.clear();
  Pages freed(0);
  r.ctrl.OnOom(freed);
  EXPECT_EQ(r.log.info, (std::vector<std::string>{"cmm: OOM processing started", "cmm: Begin free of 256 pages.",
                                                  "cmm: End request with 0 pages unfulfilled",
                                                  "cmm: OOM processing complete"}));
  r.log.info.clear();
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.Round();
  EXPECT_TRUE(r.log.HasInfo("cmm: Hotplug operation in progress, activity suspended"));
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  EXPECT_TRUE(r.log.HasInfo("cmm: Memory offline operation complete."));
  r.Round();
  EXPECT_TRUE(r.log.HasInfo("cmm: Hotplug operation has occurred, loaning activity suspended for 5 seconds."));
}

TEST(Log, S14_DebugCanBeSwitchedOnAtRunTime) {
  Rig r(1024);
  ASSERT_TRUE(r.ctrl.files().Write("debug", "1", Writer{}).has_value());
  r.ctrl.Inflate(Pages(1));
  EXPECT_TRUE(r.log.HasInfo("cmm: Begin request for 1 pages"));
}

}  // namespace cmm::testing
