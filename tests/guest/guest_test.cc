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
  EXPECT_EQ(GuestRam::Create("t", 0).error().code, ErrorCode::kInvalid);
  auto ram = GuestRam::Create("t", 1 << 20);
  ASSERT_TRUE(ram.has_value());
  EXPECT_FALSE(ram->Release(512 << 10, 1 << 20).has_value());
}

// Plain memory standing in for guest RAM, for allocator-only tests.
struct Ram {
  explicit Ram(uint64_t pages) : bytes(pages * 4096) {}
  uint8_t* data() { return bytes.data(); }
  std::vector<uint8_t> bytes;
};

TEST(PageAllocator, HandsOutLowestFreePageFirstAndCountsBadFrees) {
  Ram ram(100);
  PageAllocator a(PageGeometry(4096), ram.data(), 100, 1, 1);
  const Handle h0 = *a.TryAlloc(PageKind::kMovable);
  EXPECT_EQ(a.Locate(h0)->value, 0U);
  EXPECT_EQ(a.AllocBalloonPage()->value, 1U);
  EXPECT_EQ(a.Locate(*a.TryAlloc(PageKind::kUnmovable))->value, 2U);
  a.FreePage(Pfn{1});
  EXPECT_EQ(a.Locate(*a.TryAlloc(PageKind::kMovable))->value, 1U);
  EXPECT_EQ(a.FreePages(), 97U);
  EXPECT_EQ(a.integrity_errors(), 0U);
  a.FreePage(Pfn{50});   // never given to the balloon
  a.FreePage(Pfn{500});  // outside guest RAM
  EXPECT_TRUE(a.Free(h0));
  EXPECT_FALSE(a.Free(h0));  // stale: freed already
  EXPECT_FALSE(a.Access(h0, [](std::span<uint8_t>, uint64_t&) {}));
  EXPECT_EQ(a.integrity_errors(), 4U);
  EXPECT_NE(a.last_integrity_error().find("stale"), std::string::npos);
  // A reused slot gets a new handle: the old one stays stale.
  const Handle again = *a.TryAlloc(PageKind::kMovable);
  EXPECT_NE(again, h0);
  EXPECT_FALSE(a.Locate(h0).has_value());
}

TEST(PageAllocator, RunsOutAndZonesCountTheirOwnPages) {
  Ram ram(12);
  PageAllocator a(PageGeometry(4096), ram.data(), 4, 3, 1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.TryAlloc(PageKind::kMovable).has_value());
  EXPECT_FALSE(a.TryAlloc(PageKind::kMovable).has_value());  // blocks 1 and 2 are offline
  EXPECT_EQ(a.Totalram(), Pages(4));
  ASSERT_TRUE(a.OnlineBlock(1));
  EXPECT_FALSE(a.OnlineBlock(1));
  EXPECT_EQ(a.ZoneTotal(Zone::kMovable), Pages(4));
  EXPECT_FALSE(a.TryAlloc(PageKind::kUnmovable).has_value());  // never from Zone Movable
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.TryAlloc(PageKind::kMovable).has_value());
  EXPECT_FALSE(a.AllocBalloonPage().has_value());
  EXPECT_EQ(a.ZoneOf(Pfn{3}), Zone::kNormal);
  EXPECT_EQ(a.ZoneOf(Pfn{4}), Zone::kMovable);
  a.AdjustTotalram(Pfn{7}, Pages(-2));
  EXPECT_EQ(a.ZoneTotal(Zone::kMovable), Pages(2));
  EXPECT_EQ(a.Totalram(), Pages(6));
}

TEST(PageAllocator, MovableAllocationsPreferZoneMovable) {
  Ram ram(8);
  PageAllocator a(PageGeometry(4096), ram.data(), 4, 2, 1);
  ASSERT_TRUE(a.OnlineBlock(1));
  EXPECT_EQ(a.Locate(*a.TryAlloc(PageKind::kMovable))->value, 4U);
  EXPECT_EQ(a.Locate(*a.TryAlloc(PageKind::kUnmovable))->value, 0U);
  EXPECT_EQ(a.AllocBalloonPage()->value, 5U);
  // The checker notices a balloon page whose usable total was not adjusted (S4).
  EXPECT_FALSE(a.CheckInvariants().has_value());
  a.AdjustTotalram(Pfn{5}, Pages(-1));
  const auto ok = a.CheckInvariants();
  EXPECT_TRUE(ok.has_value()) << ok.error();
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
  o.ram_bytes = MiB(64);  // 16384 pages
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
  o.ram_bytes = Bytes(65536 * 3 + 4096);
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
  o.ram_bytes = MiB(64);
  o.max_bytes = MiB(256);
  o.params.simulate = true;
  o.params.disable = 1;
  auto made = Partition::Create(o);
  ASSERT_TRUE(made.has_value()) << made.error();
  Partition& p = **made;
  EXPECT_EQ(p.block_bytes(), MiB(64));  // 128M does not divide 64M: halved
  EXPECT_EQ(p.blocks_total(), 4U);
  EXPECT_EQ(p.blocks_online(), 1U);
  EXPECT_EQ(p.memory().Totalram(), Pages(16384));
  ActionLog log;
  ASSERT_EQ(p.kernel().RegisterMemory(log, 0), 0);

  const auto first = p.HotAdd(MiB(128));
  ASSERT_TRUE(first.has_value()) << first.error();
  EXPECT_EQ(*first, (std::vector<uint64_t>{1, 2}));
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

  const auto too_much = p.HotAdd(MiB(128));
  ASSERT_FALSE(too_much.has_value());
  EXPECT_EQ(too_much.error().code, ErrorCode::kInvalid);
  EXPECT_NE(too_much.error().message.find("only 1 of 4 memory blocks are offline"), std::string::npos) << too_much.error();
  EXPECT_FALSE(p.HotAdd(MiB(10)).has_value());  // not whole blocks
  EXPECT_EQ(p.blocks_online(), 3U);
  p.Stop();
  EXPECT_EQ(p.memory().FreePages(), 3U * 16384);
  p.kernel().UnregisterMemory(log);
}

TEST(HotAdd, BlockSizeMustDivideTheRamSizes) {
  PartitionOptions o;
  o.name = "blk";
  o.ram_bytes = MiB(64);
  o.max_bytes = MiB(96);
  o.block_bytes = MiB(64);
  const auto made = Partition::Create(o);
  ASSERT_FALSE(made.has_value());
  EXPECT_EQ(made.error().code, ErrorCode::kInvalid);
  EXPECT_NE(made.error().message.find("divide"), std::string::npos) << made.error();
  o.max_bytes = MiB(32);
  EXPECT_FALSE(Partition::Create(o).has_value());  // maximum below boot RAM
  o.block_bytes = Bytes(0);
  o.max_bytes = MiB(64) + Bytes(100);
  EXPECT_FALSE(Partition::Create(o).has_value());  // maximum not whole pages
}

}  // namespace cmm::guest
