// Hot-remove through the real allocator, balloon and memfd (issue: "hot-
// remove of a block with movable pages, balloon pages and free pages
// succeeds, data verified, memory returned"), S12/S13 through the real chain.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "guest/partition.h"
#include "guest/pattern.h"

namespace cmm::guest {
namespace {

constexpr Bytes kBlock = MiB(16);  // 4096 pages of 4 KiB
constexpr uint64_t kPagesPerBlock = 4096;

struct Events final : MemoryListener {
  void OnMemoryEvent(MemoryAction a) override { actions.push_back(a); }
  std::vector<MemoryAction> actions;
};

struct Lines final : LogSink {
  void Info(std::string_view l) override { lines.emplace_back(l); }
  void Error(std::string_view l) override { lines.emplace_back(l); }
  bool Saw(std::string_view part) const {
    for (const auto& l : lines) {
      if (l.find(part) != std::string::npos) return true;
    }
    return false;
  }
  std::vector<std::string> lines;
};

std::unique_ptr<Partition> Make(uint64_t boot_blocks, uint64_t max_blocks, LogSink* log = nullptr) {
  PartitionOptions o;
  o.name = "hotremove";
  o.ram_bytes = kBlock * static_cast<int64_t>(boot_blocks);
  o.max_bytes = kBlock * static_cast<int64_t>(max_blocks);
  o.block_bytes = kBlock;
  o.params.simulate = true;
  o.params.min_mem_mb = 0;
  o.params.disable = 1;  // the tests drive the balloon
  o.log = log;
  auto made = Partition::Create(o);
  EXPECT_TRUE(made.has_value()) << made.error();
  return std::move(*made);
}

// Movable pages with a pattern, as a workload would hold them.
std::vector<Handle> FillMovable(PageAllocator& m, uint64_t n) {
  std::vector<Handle> pages;
  for (uint64_t i = 0; i < n; ++i) {
    const Handle h = *m.TryAlloc(PageKind::kMovable);
    m.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
      generation = 7;
      FillPattern(bytes, h.value, generation);
    });
    pages.push_back(h);
  }
  return pages;
}

uint64_t BadPages(PageAllocator& m, const std::vector<Handle>& pages) {
  uint64_t bad = 0;
  for (const Handle h : pages) {
    bool good = false;
    m.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) { good = CheckPattern(bytes, h.value, generation); });
    bad += good ? 0 : 1;
  }
  return bad;
}

void ExpectConsistent(Partition& p) {
  const auto ok = p.memory().CheckInvariants();
  EXPECT_TRUE(ok.has_value()) << ok.error();
  EXPECT_EQ(p.memory().Counts().balloon, static_cast<uint64_t>(p.controller().loaned().value()));
  EXPECT_EQ(p.memory().integrity_errors(), 0U) << p.memory().last_integrity_error();
}

TEST(HotRemove, BlockWithMovableBalloonAndFreePagesGoesAwayDataIntactMemoryReturned) {
  auto p = Make(2, 4);
  ASSERT_TRUE(p->HotAdd(2 * kBlock).has_value());  // blocks 2, 3 in Zone Movable
  ASSERT_EQ(p->Start(), 0);
  Events events;
  ASSERT_EQ(p->kernel().RegisterMemory(events, 0), 0);
  PageAllocator& m = p->memory();
  const auto pages = FillMovable(m, 2048);  // lowest Movable pages: block 2
  ASSERT_EQ(m.Locate(pages.back())->value, 2 * kPagesPerBlock + 2047);
  ASSERT_EQ(p->controller().Inflate(Pages(1000)), Pages(0));  // also in block 2
  ASSERT_EQ(m.UsedIn(2).balloon.size(), 1000U);
  const Pages total_before = m.Totalram();
  const uint64_t backing_before = p->ram().BackingBytes();

  const auto r = p->HotRemove(2);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->blocks, std::vector<uint64_t>{2});
  EXPECT_EQ(r->movable_migrated, 2048U);
  EXPECT_EQ(r->balloon_migrated, 1000U);
  EXPECT_EQ(m.block_state(2), BlockState::kOffline);
  EXPECT_EQ(m.Totalram(), total_before - Pages(kPagesPerBlock));
  EXPECT_EQ(p->controller().loaned(), Pages(1000));  // still loaned, now elsewhere
  EXPECT_TRUE(m.UsedIn(2).balloon.empty());
  // The block's 8 MiB of touched pages went back to the host (punch hole,
  // measured by st_blocks); their copies elsewhere take the same again.
  EXPECT_GE(r->bytes_released, MiB(8));
  EXPECT_LE(p->ram().BackingBytes(), backing_before);
  EXPECT_EQ(BadPages(m, pages), 0U);
  for (const Handle h : pages) EXPECT_NE(m.Locate(h)->value / kPagesPerBlock, 2U);
  EXPECT_EQ(events.actions, (std::vector<MemoryAction>{MemoryAction::kGoingOffline, MemoryAction::kOffline}));
  EXPECT_FALSE(p->controller().Snapshot().hotplug_held);
  ExpectConsistent(*p);

  // The block can come back, and removing an offline block is refused.
  EXPECT_EQ(p->HotRemove(2).error().code, ErrorCode::kInvalid);
  ASSERT_TRUE(p->HotAdd(kBlock).has_value());
  EXPECT_EQ(m.block_state(2), BlockState::kOnline);
  for (const Handle h : pages) m.Free(h);
  p->Stop();
  ExpectConsistent(*p);
  p->kernel().UnregisterMemory(events);
}

TEST(HotRemove, UnmovablePageCancelsTheRemovalAndChangesNothing) {
  auto p = Make(2, 2);
  ASSERT_EQ(p->Start(), 0);
  Events events;
  ASSERT_EQ(p->kernel().RegisterMemory(events, 0), 0);
  PageAllocator& m = p->memory();
  const auto movable = FillMovable(m, 100);  // pages 0..99: Normal is the only zone
  const Handle pinned = *m.TryAlloc(PageKind::kUnmovable);
  ASSERT_EQ(m.Locate(pinned)->value, 100U);
  ASSERT_EQ(p->controller().Inflate(Pages(50)), Pages(0));
  const Pages total = m.Totalram();
  const uint64_t free = m.FreePages();
  std::vector<Pfn> where;
  for (const Handle h : movable) where.push_back(*m.Locate(h));

  const auto r = p->HotRemove(0);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kBusy);
  EXPECT_NE(r.error().message.find("removal cancelled"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("1 unmovable page(s) cannot be migrated: pfn 0x64"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(m.block_state(0), BlockState::kOnline);
  EXPECT_EQ(m.Totalram(), total);
  EXPECT_EQ(m.FreePages(), free);
  EXPECT_EQ(p->controller().loaned(), Pages(50));
  for (size_t i = 0; i < movable.size(); ++i) EXPECT_EQ(*m.Locate(movable[i]), where[i]);
  EXPECT_EQ(BadPages(m, movable), 0U);
  EXPECT_EQ(events.actions, (std::vector<MemoryAction>{MemoryAction::kGoingOffline, MemoryAction::kCancelOffline}));
  EXPECT_FALSE(p->controller().Snapshot().hotplug_held);  // S12: cancelled releases the lock
  ExpectConsistent(*p);
  p->kernel().UnregisterMemory(events);
}

TEST(HotRemove, NoRoomToMigrateCancels) {
  auto p = Make(2, 2);
  PageAllocator& m = p->memory();
  const auto pages = FillMovable(m, 2 * kPagesPerBlock - 10);  // only 10 free pages in all
  const auto r = p->HotRemove(1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kBusy);
  EXPECT_NE(r.error().message.find("no free page outside the block"), std::string::npos) << r.error().message;
  EXPECT_EQ(m.block_state(1), BlockState::kOnline);
  EXPECT_EQ(BadPages(m, pages), 0U);
  ExpectConsistent(*p);
  EXPECT_EQ(p->HotRemove(9).error().code, ErrorCode::kInvalid);  // no such block
}

TEST(HotRemove, S13_BalloonPageMigratedAcrossZonesMovesOnePageOfUsableTotal) {
  auto p = Make(2, 3);
  ASSERT_EQ(p->Start(), 0);
  PageAllocator& m = p->memory();
  ASSERT_EQ(p->controller().Inflate(Pages(10)), Pages(0));  // pages 0..9, Zone Normal
  ASSERT_EQ(m.ZoneTotal(Zone::kNormal), Pages(2 * kPagesPerBlock - 10));
  ASSERT_TRUE(p->HotAdd(kBlock).has_value());  // block 2, Zone Movable
  ASSERT_EQ(m.ZoneTotal(Zone::kMovable), Pages(kPagesPerBlock));

  const auto r = p->HotRemove(0);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->balloon_migrated, 10U);
  // Each moved page took one page of usable total from Movable back to
  // Normal, then block 0 left Normal whole.
  EXPECT_EQ(m.ZoneTotal(Zone::kNormal), Pages(kPagesPerBlock));
  EXPECT_EQ(m.ZoneTotal(Zone::kMovable), Pages(kPagesPerBlock - 10));
  for (const Pfn page : p->controller().balloon().Snapshot()) EXPECT_EQ(m.ZoneOf(page), Zone::kMovable);
  ExpectConsistent(*p);
}

// Calls the poll loop from inside the memory chain, after the balloon's own
// handler: the round runs while the hot-remove holds the lock.
struct PollDuringRemove final : MemoryListener {
  explicit PollDuringRemove(Controller& c) : c(c) {}
  void OnMemoryEvent(MemoryAction a) override {
    if (a == MemoryAction::kGoingOffline) c.Poll(std::chrono::steady_clock::now() + std::chrono::hours(1));
  }
  Controller& c;
};

TEST(HotRemove, S3_BalloonSkipsItsRoundsDuringAndAfterAHotRemove) {
  Lines log;
  auto p = Make(2, 2, &log);
  ASSERT_EQ(p->Start(), 0);
  Controller& c = p->controller();
  c.params().debug = 1;
  c.params().hotplug_delay = 5;
  c.params().simulate_loan_target_kb = 4096;  // 1024 pages
  const auto later = [](int hours) { return std::chrono::steady_clock::now() + std::chrono::hours(hours); };
  c.Poll(later(1));  // the loop's first sleep
  PollDuringRemove poll(c);
  ASSERT_EQ(p->kernel().RegisterMemory(poll, 0), 0);  // below the balloon's priority 1

  ASSERT_TRUE(p->HotRemove(1).has_value());
  EXPECT_TRUE(log.Saw("Hotplug operation in progress, activity suspended"));
  EXPECT_EQ(c.loaned(), Pages(0));
  c.Poll(later(2));  // the first round after it: pause for hotplug_delay
  EXPECT_TRUE(log.Saw("Hotplug operation has occurred, loaning activity suspended for 5 seconds."));
  EXPECT_EQ(c.loaned(), Pages(0));
  c.Poll(later(3));  // the pause ends: sleep again
  EXPECT_EQ(c.loaned(), Pages(0));
  c.Poll(later(4));  // and the next round works
  EXPECT_EQ(c.loaned(), Pages(1024));
  ExpectConsistent(*p);
  p->kernel().UnregisterMemory(poll);
}

TEST(HotRemove, BySizeTakesTheHighestBlocksThatCanGo) {
  auto p = Make(4, 4);
  PageAllocator& m = p->memory();
  // Put an unmovable page in block 3: fill blocks 0-2 first, then free them.
  const auto filler = FillMovable(m, 3 * kPagesPerBlock);
  const Handle pinned = *m.TryAlloc(PageKind::kUnmovable);
  ASSERT_EQ(m.Locate(pinned)->value, 3 * kPagesPerBlock);
  for (size_t i = 100; i < filler.size(); ++i) m.Free(filler[i]);
  const std::vector<Handle> pages(filler.begin(), filler.begin() + 100);

  const auto r = p->HotRemoveBytes(2 * kBlock);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->blocks, (std::vector<uint64_t>{2, 1}));  // 3 was skipped
  EXPECT_EQ(m.block_state(3), BlockState::kOnline);
  // 3 still cannot go; 0 can (its pages move to 3), and then 3 is the last.
  const auto more = p->HotRemoveBytes(2 * kBlock);
  ASSERT_FALSE(more.has_value());
  EXPECT_EQ(more.error().code, ErrorCode::kBusy);
  EXPECT_NE(more.error().message.find("removed 1 of 2 blocks (blocks 0); block 3: removal cancelled"),
            std::string::npos)
      << more.error().message;
  EXPECT_NE(more.error().message.find("pfn 0x3000"), std::string::npos);
  EXPECT_EQ(p->blocks_online(), 1U);
  EXPECT_EQ(BadPages(m, pages), 0U);
  EXPECT_EQ(p->HotRemoveBytes(Bytes(100)).error().code, ErrorCode::kInvalid);
  ExpectConsistent(*p);
}

}  // namespace
}  // namespace cmm::guest
