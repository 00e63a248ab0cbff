// S2: the target computation of one poll.
#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

constexpr int64_t kPage = 4096;

TEST(Target, S2_LoanRequestInPagesPlusLoaned) {
  Rig r(1024);
  r.Request(10 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(10));
  ASSERT_EQ(r.ctrl.Inflate(Pages(10)), Pages(0));
  r.Request(5 * kPage);  // five more on top of the ten loaned
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(15));
}

TEST(Target, S2_RequestTruncatesTowardZero) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(10)), Pages(0));
  r.Request(3 * kPage + 100);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(13));
  r.Request(-(3 * kPage + 100));  // -3.02 pages truncates to -3, not -4
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(7));
}

TEST(Target, S2_NegativeLoanRequestGivesPagesBack) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(20)), Pages(0));
  r.Request(-8 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(12));
  r.Request(-100 * kPage);  // more than loaned: target < 0 becomes 0
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(0));
}

TEST(Target, S2_GetMppFailureKeepsPreviousTarget) {
  Rig r(1024);
  r.Request(30 * kPage);
  r.ctrl.ComputeTarget();
  ASSERT_EQ(r.ctrl.loaned_target(), Pages(30));
  r.hv.get_mpp_rc = papr::kHardware;
  r.Request(1 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(30));
  r.hv.get_mpp_rc = papr::kSuccess;
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(1));
}

TEST(Target, S2_MinMemClamp) {
  ParamValues p;
  p.min_mem_mb = 1;  // 256 pages of 4 KiB
  Rig r(1024, p);
  r.Request(1000 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(1024 - 256));
  r.Request(768 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(768));
  r.Request(500 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(500));
}

TEST(Target, S2_MinMemCountsLoanedPagesInTotal) {
  ParamValues p;
  p.min_mem_mb = 1;
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Inflate(Pages(700)), Pages(0));
  r.Request(1000 * kPage);  // total is still 1024 (324 usable + 700 loaned)
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(768));
}

TEST(Target, S2_TotalBelowMinMemMeansNoLoan) {
  ParamValues p;
  p.min_mem_mb = 8;  // 2048 pages > 1024 total
  Rig r(1024, p);
  r.Request(10 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(0));
}

TEST(Target, S2_OomFreedLowersTarget) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(600)), Pages(0));
  Pages freed(0);
  r.ctrl.OnOom(freed);  // 1024 kB = 256 pages
  ASSERT_EQ(r.ctrl.oom_freed(), Pages(256));
  r.Request(0);
  r.ctrl.ComputeTarget();  // 344 loaned + 0 request - 256
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(344 - 256));
  r.Request(-400 * kPage);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(0));
}

TEST(Target, S2_SimulateTargetFromKb) {
  ParamValues p = Rig::Defaults();
  p.simulate = true;
  p.simulate_loan_target_kb = 400;  // 100 pages
  Rig r(1024, p);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(100));
  EXPECT_EQ(r.hv.get_mpp_calls, 0);
  r.ctrl.params().simulate_loan_target_kb = 401;  // rounds down to whole pages
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(100));
}

TEST(Target, S2_64KPagesConvertRequestAndMinMem) {
  ParamValues p;
  p.min_mem_mb = 1;  // 16 pages of 64 KiB
  Rig r(64, p, 65536);
  r.Request(10 * 65536 + 65535);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(10));
  r.Request(100 * 65536);
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(64 - 16));
}

}  // namespace cmm::testing
