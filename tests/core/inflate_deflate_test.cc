// S4 inflate and S5 deflate, with the exact hcall sequences of the driver.
#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

using papr::kPageSetActive;
using papr::kPageSetLoaned;

constexpr uint64_t k64K = 65536;
constexpr uint64_t k4K = 4096;

// One 64 KiB page = 16 CMO pages of 4 KiB.
Rig Rig64K(uint64_t pages = 16) {
  ParamValues p = Rig::Defaults();
  return Rig(pages, p, k64K);
}

TEST(Inflate, S4_LoansEveryCmoPageInAddressOrder) {
  Rig r = Rig64K();
  ASSERT_EQ(r.ctrl.Inflate(Pages(1)), Pages(0));
  ASSERT_EQ(r.hv.calls.size(), 16U);
  for (uint64_t i = 0; i < 16; ++i) EXPECT_EQ(r.hv.calls[i], (HcallRecord{kPageSetLoaned, i * k4K}));
  EXPECT_EQ(r.hv.loaned.size(), 16U);
  EXPECT_EQ(r.ctrl.loaned(), Pages(1));
  EXPECT_EQ(r.mem.Totalram(), Pages(15));
  EXPECT_TRUE(r.ctrl.balloon().Contains(Pfn{0}));
}

TEST(Inflate, S4_ThirdCmoPageFailsRollsBackInReverse) {
  Rig r = Rig64K();
  r.hv.fail = [](uint64_t flags, uint64_t addr) {
    return flags == kPageSetLoaned && addr == 2 * k4K ? papr::kNotEnoughResources : papr::kSuccess;
  };
  EXPECT_EQ(r.ctrl.Inflate(Pages(3)), Pages(3));
  const std::vector<HcallRecord> want{
      {kPageSetLoaned, 0}, {kPageSetLoaned, k4K}, {kPageSetLoaned, 2 * k4K},
      {kPageSetActive, k4K}, {kPageSetActive, 0},
  };
  EXPECT_EQ(r.hv.calls, want);
  EXPECT_TRUE(r.hv.loaned.empty());
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_EQ(r.mem.Totalram(), Pages(16));
  EXPECT_EQ(r.mem.state(Pfn{0}), FakeGuestMemory::State::kFree);  // page returned
  ASSERT_EQ(r.log.error.size(), 1U);
  EXPECT_EQ(r.log.error[0], "cmm: Can not set page to loaned. rc=-44");
}

TEST(Inflate, S4_FailureOnFirstCmoPageNeedsNoRollback) {
  Rig r = Rig64K();
  r.hv.fail = [](uint64_t, uint64_t addr) { return addr == 0 ? papr::kHardware : papr::kSuccess; };
  EXPECT_EQ(r.ctrl.Inflate(Pages(1)), Pages(1));
  EXPECT_EQ(r.hv.calls, (std::vector<HcallRecord>{{kPageSetLoaned, 0}}));
}

TEST(Inflate, S4_FailureStopsTheRoundAfterEarlierPages) {
  Rig r(64);
  r.hv.fail = [](uint64_t, uint64_t addr) { return addr == 3 * k4K ? papr::kParameter : papr::kSuccess; };
  EXPECT_EQ(r.ctrl.Inflate(Pages(10)), Pages(7));
  EXPECT_EQ(r.ctrl.loaned(), Pages(3));
  EXPECT_EQ(r.mem.alloc_calls, 4);
}

TEST(Inflate, S4_AllocationFailureStopsTheRound) {
  Rig r(8);
  EXPECT_EQ(r.ctrl.Inflate(Pages(20)), Pages(12));
  EXPECT_EQ(r.ctrl.loaned(), Pages(8));
  EXPECT_EQ(r.mem.Totalram(), Pages(0));
}

TEST(Inflate, S4_HotRemoveInTheMiddleStopsIt) {
  Rig r(64);
  int allocs = 0;
  r.mem.before_alloc = [&] {
    if (++allocs == 5) r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  };
  // The fifth allocation happens, then the next page's check sees the lock.
  EXPECT_EQ(r.ctrl.Inflate(Pages(20)), Pages(15));
  EXPECT_EQ(r.ctrl.loaned(), Pages(5));
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  // Still stopped: a hot-remove has occurred and the poll loop has not seen it.
  EXPECT_EQ(r.ctrl.Inflate(Pages(5)), Pages(5));
}

TEST(Inflate, S4_SimulateMakesNoHcalls) {
  ParamValues p = Rig::Defaults();
  p.simulate = true;
  Rig r(64, p);
  EXPECT_EQ(r.ctrl.Inflate(Pages(10)), Pages(0));
  EXPECT_TRUE(r.hv.calls.empty());
  EXPECT_EQ(r.ctrl.loaned(), Pages(10));
}

TEST(Deflate, S5_ActivatesInAddressOrderAndFrees) {
  Rig r = Rig64K();
  ASSERT_EQ(r.ctrl.Inflate(Pages(1)), Pages(0));
  r.hv.calls.clear();
  EXPECT_EQ(r.ctrl.Deflate(Pages(1)), Pages(0));
  ASSERT_EQ(r.hv.calls.size(), 16U);
  for (uint64_t i = 0; i < 16; ++i) EXPECT_EQ(r.hv.calls[i], (HcallRecord{kPageSetActive, i * k4K}));
  EXPECT_TRUE(r.hv.loaned.empty());
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_EQ(r.mem.Totalram(), Pages(16));
  EXPECT_EQ(r.mem.state(Pfn{0}), FakeGuestMemory::State::kFree);
}

TEST(Deflate, S5_ThirdCmoPageFailsRollsBackInReverseAndStillFrees) {
  Rig r = Rig64K();
  ASSERT_EQ(r.ctrl.Inflate(Pages(1)), Pages(0));
  r.hv.calls.clear();
  r.hv.fail = [](uint64_t flags, uint64_t addr) {
    return flags == kPageSetActive && addr == 2 * k4K ? papr::kHardware : papr::kSuccess;
  };
  EXPECT_EQ(r.ctrl.Deflate(Pages(1)), Pages(0));  // the error is ignored
  const std::vector<HcallRecord> want{
      {kPageSetActive, 0}, {kPageSetActive, k4K}, {kPageSetActive, 2 * k4K},
      {kPageSetLoaned, k4K}, {kPageSetLoaned, 0},
  };
  EXPECT_EQ(r.hv.calls, want);
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_EQ(r.mem.Totalram(), Pages(16));
  EXPECT_EQ(r.mem.state(Pfn{0}), FakeGuestMemory::State::kFree);
}

TEST(Deflate, S5_EmptyBalloonStopsAndReportsTheRest) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Inflate(Pages(4)), Pages(0));
  EXPECT_EQ(r.ctrl.Deflate(Pages(10)), Pages(6));
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_EQ(r.mem.Count(FakeGuestMemory::State::kFree), 64U);
}

}  // namespace cmm::testing
