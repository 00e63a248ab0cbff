// guest/ against the real OS: memfd RAM, the allocator, the notifier chains,
// and a simulate-mode partition ballooning through the real allocator.
#include <sys/stat.h>

#include <cstring>

#include <gtest/gtest.h>

#include "core/control_files.h"
#include "guest/allocator.h"
#include "guest/kernel.h"
#include "guest/partition.h"
#include "guest/ram.h"

namespace cmm::guest {

TEST(GuestRam, IsAMemfdOfTheGivenSizeBackedOnlyWhereTouched) {
  auto ram = GuestRam::Create("t", 64 << 20);
  ASSERT_TRUE(ram.has_value()) << ram.error();
  struct stat st {};
  ASSERT_EQ(fstat(ram->fd(), &st), 0);
  EXPECT_EQ(st.st_size, 64 << 20);
  EXPECT_EQ(ram->BackingBytes(), 0U);
  std::memset(ram->data(), 0xAB, 8 << 20);
  EXPECT_GE(ram->BackingBytes(), uint64_t{8} << 20);
  ASSERT_TRUE(ram->Release(0, 8 << 20).has_value());
  EXPECT_LT(ram->BackingBytes(), uint64_t{1} << 20);
  EXPECT_EQ(ram->data()[4096], 0);  // released memory reads as zeros
}

TEST(GuestRam, RefusesZeroSizeAndOutOfRangeRelease) {
  EXPECT_FALSE(GuestRam::Create("t", 0).has_value());
  auto ram = GuestRam::Create("t", 1 << 20);
  ASSERT_TRUE(ram.has_value());
  EXPECT_FALSE(ram->Release(512 << 10, 1 << 20).has_value());
}

TEST(PageAllocator, HandsOutLowestFreePageFirstAndCountsBadFrees) {
  PageAllocator a(PageGeometry(4096), 100, 100);
  EXPECT_EQ(a.TryAlloc()->value, 0U);
  EXPECT_EQ(a.AllocBalloonPage()->value, 1U);
  EXPECT_EQ(a.TryAlloc()->value, 2U);
  a.FreePage(Pfn{1});
  EXPECT_EQ(a.TryAlloc()->value, 1U);
  EXPECT_EQ(a.FreePages(), 97U);
  a.FreePage(Pfn{50});  // never allocated
  a.FreePage(Pfn{500});  // outside guest RAM
  EXPECT_EQ(a.integrity_errors(), 2U);
}

TEST(PageAllocator, RunsOutAndZonesCountTheirOwnPages) {
  PageAllocator a(PageGeometry(4096), 10, 6);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(a.TryAlloc().has_value());
  EXPECT_FALSE(a.TryAlloc().has_value());  // pages 6..9 are offline
  EXPECT_EQ(a.Totalram(), Pages(6));
  a.Online(Pfn{6}, 4);
  EXPECT_EQ(a.ZoneTotal(Zone::kMovable), Pages(4));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.TryAlloc().has_value());
  EXPECT_FALSE(a.AllocBalloonPage().has_value());
  EXPECT_EQ(a.ZoneOf(Pfn{5}), Zone::kNormal);
  EXPECT_EQ(a.ZoneOf(Pfn{6}), Zone::kMovable);
  a.AdjustTotalram(Pfn{7}, Pages(-2));
  EXPECT_EQ(a.ZoneTotal(Zone::kMovable), Pages(2));
  EXPECT_EQ(a.Totalram(), Pages(8));
}

struct Recorder final : MemoryListener {
  Recorder(std::vector<int>& log, int id) : log(log), id(id) {}
  void OnMemoryEvent(MemoryAction) override { log.push_back(id); }
  std::vector<int>& log;
  int id;
};

TEST(KernelServices, S12_MemoryChainRunsHighPriorityFirst) {
  KernelServices k;
  std::vector<int> order;
  Recorder late(order, 1), early(order, 10), mid(order, 5);
  ASSERT_EQ(k.RegisterMemory(late, 1), 0);
  ASSERT_EQ(k.RegisterMemory(early, 10), 0);
  ASSERT_EQ(k.RegisterMemory(mid, 5), 0);
  EXPECT_NE(k.RegisterMemory(mid, 5), 0);  // twice is refused
  k.NotifyMemory(MemoryAction::kGoingOffline);
  EXPECT_EQ(order, (std::vector<int>{10, 5, 1}));
  k.UnregisterMemory(mid);
  order.clear();
  k.NotifyMemory(MemoryAction::kOffline);
  EXPECT_EQ(order, (std::vector<int>{10, 1}));
}

TEST(Partition, S4_S5_SimulateBalloonMovesRealAllocatorPages) {
  PartitionOptions o;
  o.name = "unit";
  o.ram_bytes = 64 << 20;  // 16384 pages
  o.params.simulate = true;
  o.params.min_mem_mb = 16;
  o.params.disable = 1;  // no poll thread: the test drives the controller
  auto p = Partition::Create(o);
  ASSERT_TRUE(p.has_value()) << p.error();
  Partition& part = **p;
  ASSERT_EQ(part.Start(), 0);
  ASSERT_NE(part.kernel().files(), nullptr);
  Controller& c = part.controller();
  c.params().simulate_loan_target_kb = 32 << 10;  // 8192 pages
  c.ComputeTarget();
  EXPECT_EQ(c.loaned_target(), Pages(8192));
  EXPECT_EQ(c.Inflate(c.loaned_target()), Pages(0));
  EXPECT_EQ(part.memory().FreePages(), 16384U - 8192U);
  EXPECT_EQ(part.memory().Totalram(), Pages(8192));
  // S6 through the real OOM chain.
  EXPECT_EQ(part.kernel().NotifyOom(), Pages(256));
  part.Stop();
  EXPECT_EQ(c.loaned(), Pages(0));
  EXPECT_EQ(part.memory().FreePages(), 16384U);
  EXPECT_EQ(part.memory().integrity_errors(), 0U);
  EXPECT_EQ(part.kernel().files(), nullptr);
}

TEST(Partition, RejectsBadGeometry) {
  PartitionOptions o;
  o.name = "bad";
  o.page_size = 3000;
  EXPECT_FALSE(Partition::Create(o).has_value());
  o.page_size = 65536;
  o.ram_bytes = 65536 * 3 + 4096;
  EXPECT_FALSE(Partition::Create(o).has_value());
}

}  // namespace cmm::guest

namespace cmm::guest {

struct ActionLog final : MemoryListener {
  void OnMemoryEvent(MemoryAction a) override { actions.push_back(a); }
  std::vector<MemoryAction> actions;
};

TEST(HotAdd, BlocksComeOnlineInZoneMovableAndTellTheMemoryChain) {
  PartitionOptions o;
  o.name = "hotadd";
  o.ram_bytes = 64 << 20;
  o.max_bytes = 256 << 20;
  o.params.simulate = true;
  o.params.disable = 1;
  auto made = Partition::Create(o);
  ASSERT_TRUE(made.has_value()) << made.error();
  Partition& p = **made;
  EXPECT_EQ(p.block_bytes(), uint64_t{64} << 20);  // 128M does not divide 64M: halved
  EXPECT_EQ(p.blocks_total(), 4U);
  EXPECT_EQ(p.blocks_online(), 1U);
  EXPECT_EQ(p.memory().Totalram(), Pages(16384));
  ActionLog log;
  ASSERT_EQ(p.kernel().RegisterMemory(log, 0), 0);

  const auto first = p.HotAdd(128 << 20);
  ASSERT_TRUE(first.has_value()) << first.error();
  EXPECT_EQ(*first, 1U);
  EXPECT_EQ(p.blocks_online(), 3U);
  EXPECT_EQ(p.memory().Totalram(), Pages(3 * 16384));
  EXPECT_EQ(p.memory().ZoneTotal(Zone::kMovable), Pages(2 * 16384));
  EXPECT_EQ(p.memory().FreePages(), 3U * 16384);
  EXPECT_EQ(log.actions, (std::vector<MemoryAction>{MemoryAction::kGoingOnline, MemoryAction::kOnline,
                                                    MemoryAction::kGoingOnline, MemoryAction::kOnline}));
  // The balloon takes hot-added pages like any other.
  ASSERT_EQ(p.Start(), 0);
  EXPECT_EQ(p.controller().Inflate(Pages(20000)), Pages(0));
  EXPECT_EQ(p.memory().ZoneOf(Pfn{19999}), Zone::kMovable);

  const auto too_much = p.HotAdd(128 << 20);
  ASSERT_FALSE(too_much.has_value());
  EXPECT_NE(too_much.error().find("only 1 of 4 memory blocks are offline"), std::string::npos) << too_much.error();
  EXPECT_FALSE(p.HotAdd(10 << 20).has_value());  // not whole blocks
  EXPECT_EQ(p.blocks_online(), 3U);
  p.Stop();
  EXPECT_EQ(p.memory().FreePages(), 3U * 16384);
  p.kernel().UnregisterMemory(log);
}

TEST(HotAdd, BlockSizeMustDivideTheRamSizes) {
  PartitionOptions o;
  o.name = "blk";
  o.ram_bytes = 64 << 20;
  o.max_bytes = 96 << 20;
  o.block_bytes = 64 << 20;
  const auto made = Partition::Create(o);
  ASSERT_FALSE(made.has_value());
  EXPECT_NE(made.error().find("divide"), std::string::npos) << made.error();
  o.max_bytes = 32 << 20;
  EXPECT_FALSE(Partition::Create(o).has_value());  // maximum below boot RAM
  o.block_bytes = 0;
  o.max_bytes = (64 << 20) + 100;
  EXPECT_FALSE(Partition::Create(o).has_value());  // maximum not whole pages
}

}  // namespace cmm::guest
