// S2: the target computation of one poll.
#include <random>

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

namespace cmm::testing {

// The numbers: total 1024 pages, floor 256, target 900, oom_freed
// 100. The OOM subtraction comes first (800), then the floor (768): not
// the floor first and the subtraction after (668).
TEST(Target, S2_TheFloorIsAppliedAfterTheOomSubtraction) {
  ParamValues p;
  p.min_mem_mb = 1;  // 256 pages of 4 KiB
  p.oom_kb = 400;    // 100 pages per OOM notification
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Inflate(Pages(200)), Pages(0));
  Pages freed(0);
  r.ctrl.OnOom(freed);
  ASSERT_EQ(freed, Pages(100));
  ASSERT_EQ(r.ctrl.oom_freed(), Pages(100));
  ASSERT_EQ(r.ctrl.loaned(), Pages(100));
  r.Request(800 * kPage);  // target = 800 + 100 loaned = 900
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(768));
}

TEST(Target, S2_ATargetNotAboveOomFreedBecomesZero) {
  ParamValues p = Rig::Defaults();
  p.oom_kb = 400;
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Inflate(Pages(200)), Pages(0));
  Pages freed(0);
  r.ctrl.OnOom(freed);  // loaned 100, oom_freed 100
  r.Request(-50 * kPage);  // target 50: 0 < target <= oom_freed
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(0));
  r.Request(0);  // target 100 == oom_freed: still the else branch
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(0));
  r.Request(1 * kPage);  // 101: one page above
  r.ctrl.ComputeTarget();
  EXPECT_EQ(r.ctrl.loaned_target(), Pages(1));
}

namespace {

// S2 written again from SPEC's steps, apart from the controller's code.
int64_t ModelTarget(int64_t previous, bool get_mpp_ok, int64_t request_bytes, int64_t loaned, int64_t totalram,
                    uint64_t min_mem_mb, int64_t oom_freed, int64_t page_size) {
  const int64_t total = totalram + loaned;
  const int64_t min_mem = static_cast<int64_t>(min_mem_mb * (1 << 20) / static_cast<uint64_t>(page_size));
  if (!get_mpp_ok) return previous;
  int64_t target = request_bytes / page_size + loaned;  // C division truncates toward zero
  if (target < 0 || total < min_mem) target = 0;
  if (target > oom_freed) {
    target -= oom_freed;
  } else {
    target = 0;
  }
  if (min_mem > total - target) target = total - min_mem;
  if (target < 0) target = 0;
  return target;
}

}  // namespace

// Random runs with H_GET_MPP failures and activation (and loan) failures
// (S5 ignores a failed activation), OOM notifications, oom_freed resets,
// min_mem_mb changes and rounds that move the balloon; after each step the
// target equals the model's.
TEST(Target, S2_S5_RandomRunsWithFailuresMatchAnIndependentModel) {
  std::mt19937_64 rng(20261130);
  ParamValues p = Rig::Defaults();
  p.oom_kb = 64;
  Rig r(2048, p);
  r.hv.record = false;
  ASSERT_EQ(r.ctrl.Start(), 0);
  int fail_active = 0, fail_loan = 0;
  r.hv.fail = [&](uint64_t flags, uint64_t) {
    const int rate = flags == papr::kPageSetActive ? fail_active : fail_loan;
    return static_cast<int>(rng() % 100) < rate ? papr::kHardware : papr::kSuccess;
  };
  int checked = 0, failed_calls = 0, clamped = 0, oom_zeroed = 0;
  for (int step = 0; step < 20000; ++step) {
    switch (rng() % 8) {
      case 0:
        r.Request((static_cast<int64_t>(rng() % 4096) - 2048) * kPage + static_cast<int64_t>(rng() % kPage));
        break;
      case 1:
        r.hv.get_mpp_rc = rng() % 4 == 0 ? papr::kHardware : papr::kSuccess;
        break;
      case 2:
        fail_active = rng() % 2 ? static_cast<int>(rng() % 50) : 0;
        fail_loan = rng() % 2 ? static_cast<int>(rng() % 50) : 0;
        break;
      case 3: {
        Pages freed(0);
        r.ctrl.OnOom(freed);
        break;
      }
      case 4:
        if (rng() % 3 == 0) r.ctrl.ResetOomFreed();
        break;
      case 5:
        r.ctrl.params().min_mem_mb = rng() % 10;  // up to 2560 pages: above the total too
        break;
      default:
        r.Round();  // the balloon moves toward its target
        break;
    }
    // One computation, checked against the model.
    const int64_t previous = r.ctrl.loaned_target().value();
    const int64_t loaned = r.ctrl.loaned().value();
    const int64_t totalram = r.mem.Totalram().value();
    const int64_t oom = r.ctrl.oom_freed().value();
    const bool ok = r.hv.get_mpp_rc == papr::kSuccess;
    const int64_t want = ModelTarget(previous, ok, r.hv.mpp.loan_request, loaned, totalram,
                                     r.ctrl.params().min_mem_mb.load(), oom, kPage);
    r.ctrl.ComputeTarget();
    ASSERT_EQ(r.ctrl.loaned_target().value(), want)
        << "step " << step << ": loaned " << loaned << ", totalram " << totalram << ", oom_freed " << oom
        << ", request " << r.hv.mpp.loan_request << ", min_mem_mb " << r.ctrl.params().min_mem_mb.load();
    ++checked;
    failed_calls += !ok;
    const int64_t min_mem = static_cast<int64_t>(r.ctrl.params().min_mem_mb.load() * 256);
    clamped += ok && want > 0 && want == totalram + loaned - min_mem;
    oom_zeroed += ok && want == 0 && oom > 0;
  }
  // The run reached the branches it claims to test.
  EXPECT_EQ(checked, 20000);
  EXPECT_GT(failed_calls, 500);
  EXPECT_GT(clamped, 100);
  EXPECT_GT(oom_zeroed, 100);
}

}  // namespace cmm::testing
