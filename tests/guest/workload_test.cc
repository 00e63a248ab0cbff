// Workloads and the page cache on a real partition, stepped with explicit
// times: patterns checked, the cache given back under pressure, and the
// balloon really giving memory back under OOM.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "guest/partition.h"
#include "guest/pattern.h"
#include "guest/workload.h"

namespace cmm::guest {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::unique_ptr<Partition> Make(Bytes ram_bytes, uint32_t oom_kb = 1024, Bytes max_bytes = Bytes(0),
                                Bytes block_bytes = Bytes(0)) {
  PartitionOptions o;
  o.name = "work";
  o.ram_bytes = ram_bytes;
  o.max_bytes = max_bytes;
  o.block_bytes = block_bytes;
  o.params.simulate = true;
  o.params.min_mem_mb = 0;
  o.params.oom_kb = oom_kb;
  o.params.disable = 1;  // the tests drive the balloon
  auto made = Partition::Create(o);
  EXPECT_TRUE(made.has_value()) << made.error();
  return std::move(*made);
}

TimePoint T(double s) { return TimePoint{} + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

TEST(WorkloadSpec, ParsesKindsSizesAndRates) {
  auto hog = ParseWorkload("hog:256M:64M/s");
  ASSERT_TRUE(hog.has_value()) << hog.error();
  EXPECT_EQ(hog->kind, WorkloadKind::kHog);
  EXPECT_EQ(hog->bytes, uint64_t{256} << 20);
  EXPECT_EQ(hog->rate, uint64_t{64} << 20);
  auto un = ParseWorkload("unmovable:16M");
  ASSERT_TRUE(un.has_value());
  EXPECT_EQ(un->page_kind, PageKind::kUnmovable);
  EXPECT_EQ(un->rate, 0U);
  EXPECT_EQ(ParseWorkload("cache:1G")->kind, WorkloadKind::kCache);
  EXPECT_NE(ParseWorkload("hog").error().find("expected KIND:ARG"), std::string::npos);
  EXPECT_NE(ParseWorkload("eat:1G").error().find("unknown kind \"eat\""), std::string::npos);
  EXPECT_NE(ParseWorkload("hog:lots").error().find("\"lots\" is not a size"), std::string::npos);
  EXPECT_NE(ParseWorkload("hog:0").error().find("more than 0"), std::string::npos);
  EXPECT_NE(ParseWorkload("phases:/nonexistent.json").error().find("cannot read"), std::string::npos);
}

TEST(WorkloadSpec, PhasesTimelineFromJson) {
  auto spec = ParsePhases(R"({"kind": "movable", "repeat_after": 30, "rate": "32M",
                              "phases": [{"at": 0, "size": "64M"}, {"at": 10, "size": 1048576}]})",
                          "phases:x.json");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  EXPECT_EQ(spec->phases.size(), 2U);
  EXPECT_EQ(spec->phases[1].bytes, 1048576U);
  EXPECT_EQ(spec->rate, uint64_t{32} << 20);
  EXPECT_FALSE(ParsePhases("[]", "x").has_value());
  EXPECT_NE(ParsePhases(R"({"phases": [{"at": 5, "size": "1M"}, {"at": 1, "size": "1M"}]})", "x").error().find("increase"),
            std::string::npos);
  EXPECT_NE(ParsePhases(R"({"phases": [{"at": 0}]})", "x").error().find("phases[0]"), std::string::npos);
  EXPECT_NE(ParsePhases(R"({"kind": "odd", "phases": [{"at": 0, "size": "1M"}]})", "x").error().find("kind"),
            std::string::npos);
  EXPECT_NE(ParsePhases("{not json", "x").error().find("not a JSON object"), std::string::npos);
}

TEST(Workload, HogFillsAtItsRateHoldsTouchesAndFreesChecked) {
  auto p = Make(MiB(16));  // 4096 pages
  Workload hog(*ParseWorkload("hog:8M:4M/s"), p->memory(), p->cache());  // 2048 pages at 1024/s
  hog.Step(T(0));
  EXPECT_EQ(hog.Stats().held_pages, 0U);
  for (int i = 1; i <= 10; ++i) hog.Step(T(0.1 * i));  // 1 s: about 1024 pages
  EXPECT_NEAR(static_cast<double>(hog.Stats().held_pages), 1024.0, 260.0);
  for (int i = 11; i <= 40; ++i) hog.Step(T(0.1 * i));
  const auto s = hog.Stats();
  EXPECT_EQ(s.held_pages, 2048U);
  EXPECT_EQ(s.target_pages, 2048U);
  EXPECT_GT(s.touched, 1000U);
  EXPECT_EQ(p->memory().Counts().movable, 2048U);
  hog.Release();
  EXPECT_EQ(hog.Stats().freed, 2048U);
  EXPECT_EQ(p->memory().FreePages(), 4096U);
  EXPECT_EQ(p->memory().integrity_errors(), 0U);
}

TEST(Workload, ACorruptedPageIsCaughtWhenTouched) {
  auto p = Make(MiB(4));
  Workload hog(*ParseWorkload("hog:64K"), p->memory(), p->cache());  // 16 pages
  hog.Step(T(0));
  ASSERT_EQ(hog.Stats().held_pages, 16U);
  // Someone writes into a page it does not own.
  const auto first = p->memory().Counts();
  ASSERT_EQ(first.movable, 16U);
  p->ram().data()[3 * 4096 + 100] ^= 0x5a;
  hog.Step(T(0.01));  // touches every page (fewer than a step's touches)
  EXPECT_EQ(p->memory().integrity_errors(), 1U);
  EXPECT_NE(p->memory().last_integrity_error().find("reads back wrong"), std::string::npos);
}

TEST(Workload, PhasesFollowTheTimelineAndRepeat) {
  auto p = Make(MiB(16));
  auto spec = ParsePhases(R"({"repeat_after": 10, "phases": [{"at": 0, "size": "4M"}, {"at": 5, "size": "1M"}]})",
                          "phases:t.json");
  ASSERT_TRUE(spec.has_value()) << spec.error();
  Workload w(*spec, p->memory(), p->cache());
  w.Step(T(0));
  EXPECT_EQ(w.Stats().held_pages, 1024U);
  w.Step(T(6));
  EXPECT_EQ(w.Stats().held_pages, 256U);
  w.Step(T(11));  // second round: back to the first phase
  EXPECT_EQ(w.Stats().held_pages, 1024U);
  EXPECT_EQ(p->memory().integrity_errors(), 0U);
}

TEST(Workload, UnmovablePagesStayInZoneNormal) {
  auto p = Make(MiB(8), 1024, MiB(16), MiB(8));
  ASSERT_TRUE(p->HotAdd(MiB(8)).has_value());
  Workload w(*ParseWorkload("unmovable:4M"), p->memory(), p->cache());
  w.Step(T(0));
  EXPECT_EQ(w.Stats().held_pages, 1024U);
  EXPECT_EQ(p->memory().Counts().unmovable, 1024U);
  EXPECT_TRUE(p->memory().CheckInvariants().has_value());  // checks unmovable ⊂ Normal
}

TEST(PageCache, UsesFreeMemoryAndGivesItBackUnderPressure) {
  auto p = Make(MiB(4));  // 1024 pages
  PageAllocator& m = p->memory();
  Workload cache(*ParseWorkload("cache:2M"), m, p->cache());  // 512 pages of source
  cache.Step(T(0));
  EXPECT_EQ(p->cache().pages(), 512U);
  EXPECT_EQ(p->cache().misses(), 512U);
  cache.Step(T(0.01));  // re-reads hit
  EXPECT_GT(p->cache().hits(), 0U);
  EXPECT_EQ(m.FreePages(), 512U);
  // A hog wants all memory: the cache shrinks, no OOM event.
  Workload hog(*ParseWorkload("hog:4M"), m, p->cache());
  hog.Step(T(0));
  EXPECT_EQ(hog.Stats().held_pages, 1024U);
  EXPECT_EQ(p->cache().pages(), 0U);
  EXPECT_EQ(p->cache().reclaimed(), 512U);
  EXPECT_EQ(m.oom_events(), 0U);
  EXPECT_EQ(m.integrity_errors(), 0U);
}

TEST(PageCache, SourceLargerThanMemoryCyclesThroughIt) {
  auto p = Make(MiB(4));
  Workload cache(*ParseWorkload("cache:8M"), p->memory(), p->cache());
  cache.Step(T(0));
  cache.Step(T(0.01));
  EXPECT_EQ(p->cache().pages(), 1024U);  // all of memory
  EXPECT_GT(p->cache().reclaimed(), 0U);
  EXPECT_EQ(p->memory().oom_events(), 0U);
  EXPECT_EQ(p->memory().integrity_errors(), 0U);
}

TEST(Workload, S6_BalloonGivesMemoryBackUnderOomAndTheCacheGoesFirst) {
  auto p = Make(MiB(16), /*oom_kb=*/256);  // 4096 pages, 64 pages per OOM give-back
  ASSERT_EQ(p->Start(), 0);
  Controller& c = p->controller();
  PageAllocator& m = p->memory();
  Workload cache(*ParseWorkload("cache:1M"), m, p->cache());  // 256 pages
  cache.Step(T(0));
  ASSERT_EQ(c.Inflate(Pages(2048)), Pages(0));
  ASSERT_EQ(m.FreePages(), 4096U - 2048U - 256U);
  // The hog wants 3 of the 4 remaining... more than is free.
  Workload hog(*ParseWorkload("hog:12M"), m, p->cache());  // 3072 pages
  hog.Step(T(0));
  const auto s = hog.Stats();
  EXPECT_EQ(s.held_pages, 3072U);
  EXPECT_EQ(s.alloc_failures, 0U);
  EXPECT_EQ(p->cache().reclaimed(), 256U);  // shrinkers first
  // Then the balloon: 3072 - 1792 free - 256 cache = 1024 pages, 64 at a time.
  EXPECT_EQ(c.oom_freed(), Pages(1024));
  EXPECT_EQ(c.loaned(), Pages(1024));
  EXPECT_EQ(m.oom_events(), 0U);
  // When the balloon is empty too, the OOM event is recorded, not hidden.
  Workload more(*ParseWorkload("hog:8M"), m, p->cache());
  more.Step(T(0));
  EXPECT_EQ(more.Stats().held_pages, 1024U);
  EXPECT_EQ(c.loaned(), Pages(0));
  EXPECT_EQ(more.Stats().alloc_failures, 1U);
  EXPECT_EQ(m.oom_events(), 1U);
  more.Step(T(0.5));  // backs off instead of hammering the OOM path
  EXPECT_EQ(m.oom_events(), 1U);
  EXPECT_EQ(m.integrity_errors(), 0U);
}

}  // namespace
}  // namespace cmm::guest
