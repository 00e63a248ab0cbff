// Migration of 1 GiB of movable 4 KiB pages through the real allocator
// (copy + handle re-point), beside memcpy of the same pages into the same
// destination in the same run; and hot-remove of one 128 MiB block that is
// half full, beside memcpy of the data it has to move.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "guest/partition.h"
#include "report.h"
#include "guest/pattern.h"

namespace {

using namespace cmm;
using Timer = std::chrono::steady_clock;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kBlock = uint64_t{128} << 20;
constexpr uint64_t kPagesPerBlock = kBlock / kPage;
constexpr uint64_t kMovedBlocks = 8;  // 1 GiB
constexpr uint64_t kPages = kMovedBlocks * kPagesPerBlock;
constexpr int kRuns = 3;

double Seconds(Timer::duration d) { return std::chrono::duration<double>(d).count(); }

std::unique_ptr<guest::Partition> Make(const char* name, uint64_t blocks) {
  guest::PartitionOptions o;
  o.name = name;
  o.ram_bytes = Bytes(static_cast<int64_t>(blocks * kBlock));
  o.block_bytes = Bytes(static_cast<int64_t>(kBlock));
  o.params.simulate = true;
  o.params.disable = 1;
  auto made = guest::Partition::Create(o);
  if (!made) {
    std::fprintf(stderr, "bench: %s\n", made.error().message.c_str());
    std::exit(1);
  }
  return std::move(*made);
}

// Moves every page out of blocks [from, from + n); returns seconds.
double MigrateBlocks(guest::PageAllocator& m, uint64_t from, uint64_t n) {
  for (uint64_t b = from; b < from + n; ++b) m.IsolateBlock(b);
  const auto t0 = Timer::now();
  for (uint64_t b = from; b < from + n; ++b) {
    for (uint64_t pfn = b * kPagesPerBlock; pfn < (b + 1) * kPagesPerBlock; ++pfn) {
      if (m.MigrateMovable(Pfn{pfn}) != guest::PageAllocator::MigrateResult::kMoved) {
        std::fprintf(stderr, "bench: page %#lx did not move\n", pfn);
        std::exit(1);
      }
    }
  }
  const double s = Seconds(Timer::now() - t0);
  for (uint64_t b = from; b < from + n; ++b) m.UnisolateBlock(b);
  return s;
}

// The floor: the same 4 KiB copies, page by page, between the same ranges.
double CopyBlocks(uint8_t* ram, uint64_t from, uint64_t to, uint64_t n) {
  const auto t0 = Timer::now();
  for (uint64_t i = 0; i < n * kPagesPerBlock; ++i) {
    std::memcpy(ram + (to * kPagesPerBlock + i) * kPage, ram + (from * kPagesPerBlock + i) * kPage, kPage);
  }
  return Seconds(Timer::now() - t0);
}

}  // namespace

int main() {
  // ---- 1 GiB of movable pages, blocks 0-7 <-> 8-15 ----
  auto p = Make("migrate", 2 * kMovedBlocks + 1);
  guest::PageAllocator& m = p->memory();
  uint8_t* ram = p->ram().data();
  std::memset(ram, 1, p->ram().size());  // fault everything in: neither side pays for page faults
  std::vector<guest::Handle> pages;
  pages.reserve(kPages);
  for (uint64_t i = 0; i < kPages; ++i) pages.push_back(*m.TryAlloc(guest::PageKind::kMovable));

  double copy = 1e9, migrate = 1e9, checked = 1e9;
  for (int run = 0; run < kRuns; ++run) {
    copy = std::min(copy, CopyBlocks(ram, 0, kMovedBlocks, kMovedBlocks));
    copy = std::min(copy, CopyBlocks(ram, kMovedBlocks, 0, kMovedBlocks));
    migrate = std::min(migrate, MigrateBlocks(m, 0, kMovedBlocks));
    migrate = std::min(migrate, MigrateBlocks(m, kMovedBlocks, kMovedBlocks));
  }
  // With a workload's pattern on every page, each arrival is checked too.
  for (const auto h : pages) {
    m.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
      generation = 1;
      guest::FillPattern(bytes, h.value, generation);
    });
  }
  for (int run = 0; run < kRuns; ++run) {
    checked = std::min(checked, MigrateBlocks(m, 0, kMovedBlocks));
    checked = std::min(checked, MigrateBlocks(m, kMovedBlocks, kMovedBlocks));
  }
  const uint64_t errors = m.integrity_errors();
  for (const auto h : pages) m.Free(h);
  p.reset();

  // ---- hot-remove of one 128 MiB block, half full ----
  auto q = Make("remove", 4);
  guest::PageAllocator& n = q->memory();
  double remove = 1e9, remove_copy = 1e9;
  for (int run = 0; run < kRuns; ++run) {
    std::memset(q->ram().data(), 1, q->ram().size());
    std::vector<guest::Handle> half;
    for (uint64_t i = 0; i < kPagesPerBlock / 2; ++i) half.push_back(*n.TryAlloc(guest::PageKind::kMovable));
    const uint64_t block = n.Locate(half.front())->value / kPagesPerBlock;  // all in the lowest free block
    // Floor: copy the half block's pages, then punch the block out of the
    // memfd, on block 3, which the removal does not touch.
    {
      const auto t0 = Timer::now();
      for (uint64_t i = 0; i < kPagesPerBlock / 2; ++i) {
        std::memcpy(q->ram().data() + (3 * kPagesPerBlock + i) * kPage,
                    q->ram().data() + (block * kPagesPerBlock + i) * kPage, kPage);
      }
      if (!q->ram().Release(3 * kBlock, kBlock)) return 1;
      remove_copy = std::min(remove_copy, Seconds(Timer::now() - t0));
      std::memset(q->ram().data() + 3 * kBlock, 1, kBlock);
    }
    const auto t0 = Timer::now();
    const auto r = q->HotRemove(block);
    const double s = Seconds(Timer::now() - t0);
    if (!r) {
      std::fprintf(stderr, "bench: %s\n", r.error().message.c_str());
      return 1;
    }
    remove = std::min(remove, s);
    for (const auto h : half) n.Free(h);
    if (!q->HotAdd(Bytes(static_cast<int64_t>(kBlock)))) return 1;
  }

  const double gib = static_cast<double>(kPages * kPage) / double(1 << 30);
  std::printf("cmm migration benchmark: %lu movable pages of 4 KiB (1 GiB), best of %d runs\n", kPages, kRuns);
  std::printf("%-30s %14s %14s %8s %8s\n", "figure", "cmm", "floor", "ratio", "goal");
  std::printf("%-30s %9.2f M/s %11.2f M/s %8.2f %8s\n", "migrate pages/s", kPages / migrate / 1e6,
              kPages / copy / 1e6, copy / migrate, ">= 0.5");
  std::printf("%-30s %8.2f GiB/s %9.2f GiB/s %8.2f\n", "migrate GiB/s", gib / migrate, gib / copy, copy / migrate);
  std::printf("%-30s %8.2f GiB/s %9.2f GiB/s %8.2f\n", "migrate + pattern check GiB/s", gib / checked, gib / copy,
              copy / checked);
  std::printf("%-30s %10.1f ms %11.1f ms %8.2f\n", "hot-remove 128 MiB, half full", remove * 1e3, remove_copy * 1e3,
              remove_copy / remove);
  std::printf("  (hot-remove floor: memcpy of the 64 MiB it moves plus the punch hole of the block)\n");
  std::printf("integrity errors: %lu\n", errors);
  std::printf("goal %s\n", copy / migrate >= 0.5 && errors == 0 ? "met" : "NOT met");
  bench::Record({"migrate", "migrate 1 GiB of 4 KiB pages", "GiB/s", gib / migrate, gib / copy, copy / migrate,
                 ">= 0.5", copy / migrate >= 0.5 && errors == 0});
  bench::Record({"migrate", "migrate + pattern check", "GiB/s", gib / checked, gib / copy, copy / checked, "", true});
  bench::Record({"migrate", "hot-remove 128 MiB half full", "ms", remove * 1e3, remove_copy * 1e3,
                 remove_copy / remove, "", true});
  return 0;
}
