// S12 memory hot-remove notifications and S13 balloon page migration.
#include <cerrno>
#include <thread>

#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

TEST(Hotplug, S12_GoingOfflineTakesTheLockOfflineReleasesIt) {
  Rig r(64);
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  EXPECT_TRUE(r.ctrl.Snapshot().hotplug_held);
  EXPECT_EQ(r.ctrl.Inflate(Pages(1)), Pages(1));
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  EXPECT_FALSE(r.ctrl.Snapshot().hotplug_held);
}

TEST(Hotplug, S12_CancelledOfflineReleasesTheLock) {
  Rig r(64);
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  r.ctrl.OnMemoryEvent(MemoryAction::kCancelOffline);
  EXPECT_FALSE(r.ctrl.Snapshot().hotplug_held);
}

TEST(Hotplug, S12_OnlineEventsAreIgnored) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 4 * 4096;
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOnline);
  r.ctrl.OnMemoryEvent(MemoryAction::kOnline);
  r.ctrl.OnMemoryEvent(MemoryAction::kCancelOnline);
  EXPECT_FALSE(r.ctrl.Snapshot().hotplug_held);
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(4));  // no hotplug pause
}

TEST(Hotplug, S12_RegisteredLateWithPriorityOne) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_EQ(r.kernel.memory, &r.ctrl);
  EXPECT_EQ(r.kernel.memory_priority, 1);
}

TEST(Hotplug, S12_SecondGoingOfflineWaitsForTheFirst) {
  Rig r(64);
  r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
  std::atomic<bool> second_holds{false};
  std::thread t([&] {
    r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
    second_holds = true;
    r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  });
  // The second remover cannot hold the lock before the first releases it.
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_FALSE(second_holds.load());
  r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  t.join();
  EXPECT_TRUE(second_holds.load());
}

TEST(Migrate, S13_MovesALoanedPageToANewPage) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Inflate(Pages(3)), Pages(0));
  const Pfn old{1};
  const Pfn fresh = *r.mem.TakeFreeIn(Zone::kNormal);
  ASSERT_TRUE(r.ctrl.IsolatePage(old));
  EXPECT_EQ(r.ctrl.balloon().isolated(), 1U);
  r.hv.calls.clear();
  EXPECT_EQ(r.ctrl.MigratePage(old, fresh), 0);
  // New page loaned first, then the old one made active.
  EXPECT_EQ(r.hv.calls, (std::vector<HcallRecord>{{papr::kPageSetLoaned, fresh.value * 4096},
                                                  {papr::kPageSetActive, old.value * 4096}}));
  EXPECT_TRUE(r.ctrl.balloon().Contains(fresh));
  EXPECT_FALSE(r.ctrl.balloon().Contains(old));
  EXPECT_EQ(r.ctrl.balloon().isolated(), 0U);
  EXPECT_EQ(r.mem.state(old), FakeGuestMemory::State::kFree);  // released
  EXPECT_EQ(r.ctrl.loaned(), Pages(3));
  EXPECT_EQ(r.mem.Totalram(), Pages(61));  // same zone: no change
}

TEST(Migrate, S13_FailureIsEbusyAndChangesNothing) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Inflate(Pages(3)), Pages(0));
  const Pfn old{2};
  const Pfn fresh = *r.mem.TakeFreeIn(Zone::kNormal);
  const auto loaned_before = r.hv.loaned;
  ASSERT_TRUE(r.ctrl.IsolatePage(old));
  r.hv.fail = [&](uint64_t, uint64_t addr) {
    return addr == fresh.value * 4096 ? papr::kNotEnoughResources : papr::kSuccess;
  };
  EXPECT_EQ(r.ctrl.MigratePage(old, fresh), EBUSY);
  EXPECT_EQ(r.hv.loaned, loaned_before);
  EXPECT_TRUE(r.ctrl.balloon().IsIsolated(old));
  EXPECT_FALSE(r.ctrl.balloon().Contains(fresh));
  EXPECT_EQ(r.mem.state(fresh), FakeGuestMemory::State::kUsed);  // still the caller's
  EXPECT_EQ(r.mem.Totalram(), Pages(61));
  r.ctrl.PutbackPage(old);
  EXPECT_EQ(r.ctrl.balloon().listed(), 3U);
  EXPECT_EQ(r.ctrl.balloon().isolated(), 0U);
  EXPECT_EQ(r.ctrl.loaned(), Pages(3));
}

TEST(Migrate, S13_AcrossZonesMovesOnePageOfUsableTotal) {
  Rig r(64, Rig::Defaults(), 4096, /*normal_pages=*/32);
  ASSERT_EQ(r.ctrl.Inflate(Pages(2)), Pages(0));  // pages 0 and 1, Normal
  EXPECT_EQ(r.mem.ZoneTotal(Zone::kNormal), 30);
  EXPECT_EQ(r.mem.ZoneTotal(Zone::kMovable), 32);
  const Pfn fresh = *r.mem.TakeFreeIn(Zone::kMovable);
  ASSERT_TRUE(r.ctrl.IsolatePage(Pfn{0}));
  ASSERT_EQ(r.ctrl.MigratePage(Pfn{0}, fresh), 0);
  EXPECT_EQ(r.mem.ZoneTotal(Zone::kNormal), 31);
  EXPECT_EQ(r.mem.ZoneTotal(Zone::kMovable), 31);
  EXPECT_EQ(r.mem.Totalram(), Pages(62));
}

TEST(Migrate, S13_OnlyIsolatedBalloonPagesMigrate) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Inflate(Pages(1)), Pages(0));
  EXPECT_FALSE(r.ctrl.IsolatePage(Pfn{5}));  // not in the balloon
  EXPECT_EQ(r.ctrl.MigratePage(Pfn{0}, Pfn{5}), EINVAL);  // not isolated
  EXPECT_TRUE(r.ctrl.balloon().Contains(Pfn{0}));
}

TEST(Migrate, S13_IsolatedPageIsNotDeflatedButStaysLoaned) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Inflate(Pages(2)), Pages(0));
  ASSERT_TRUE(r.ctrl.IsolatePage(Pfn{1}));
  EXPECT_EQ(r.ctrl.Deflate(Pages(2)), Pages(1));
  EXPECT_EQ(r.ctrl.loaned(), Pages(1));
  EXPECT_TRUE(r.hv.loaned.count(4096));
}

}  // namespace cmm::testing
