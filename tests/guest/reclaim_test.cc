// The reclaim path of the guest allocator with a real partition's balloon
// on the OOM chain: shrinkers, then the balloon's give-back (S6), then one
// retry, then a recorded OOM event.
#include <gtest/gtest.h>

#include "guest/partition.h"

namespace cmm::guest {
namespace {

// A cache of pages taken from the allocator that it gives back on demand.
struct TestCache final : Shrinker {
  TestCache(PageAllocator& a, std::vector<std::string>& log) : alloc(a), log(log) {}
  uint64_t Shrink(uint64_t wanted) override {
    log.push_back("shrink");
    uint64_t n = 0;
    for (; n < wanted && !pages.empty(); ++n) {
      alloc.Free(pages.back());
      pages.pop_back();
    }
    return n;
  }
  PageAllocator& alloc;
  std::vector<std::string>& log;
  std::vector<Handle> pages;
};

// Records when the OOM chain reaches it (after the balloon, registered earlier).
struct OomRecorder final : OomListener {
  OomRecorder(std::vector<std::string>& log, Pages& seen) : log(log), seen(seen) {}
  void OnOom(Pages& freed) override {
    log.push_back("oom");
    seen = freed;
  }
  std::vector<std::string>& log;
  Pages& seen;
};

class Reclaim : public ::testing::Test {
 protected:
  void SetUp() override {
    PartitionOptions o;
    o.name = "reclaim";
    o.ram_bytes = MiB(4);  // 1024 pages
    o.params.simulate = true;
    o.params.min_mem_mb = 0;
    o.params.oom_kb = 16;  // 4 pages per OOM notification
    o.params.disable = 1;  // the test drives the balloon
    auto made = Partition::Create(o);
    ASSERT_TRUE(made.has_value()) << made.error();
    p = std::move(*made);
    ASSERT_EQ(p->Start(), 0);
  }
  // Takes every free page for "the rest of the guest".
  std::vector<Handle> FillMemory() {
    std::vector<Handle> used;
    while (auto page = p->memory().TryAlloc(PageKind::kMovable)) used.push_back(*page);
    return used;
  }
  std::unique_ptr<Partition> p;
  std::vector<std::string> log;
};

TEST_F(Reclaim, S6_OrderIsShrinkersThenBalloonGiveBackThenRetry) {
  Controller& c = p->controller();
  ASSERT_EQ(c.Inflate(Pages(100)), Pages(0));
  TestCache cache(p->memory(), log);  // empty: frees nothing
  ASSERT_EQ(p->kernel().RegisterShrinker(cache), 0);
  Pages seen(0);
  OomRecorder rec(log, seen);
  ASSERT_EQ(p->kernel().RegisterOom(rec), 0);
  const auto used = FillMemory();
  ASSERT_EQ(used.size(), 924U);

  const auto page = p->memory().Alloc(PageKind::kMovable);
  ASSERT_TRUE(page.has_value()) << page.error();
  EXPECT_EQ(log, (std::vector<std::string>{"shrink", "oom"}));
  EXPECT_EQ(seen, Pages(4));           // the balloon, earlier on the chain, gave 4 pages
  EXPECT_EQ(c.oom_freed(), Pages(4));  // and counted them
  EXPECT_EQ(c.loaned(), Pages(96));
  EXPECT_EQ(p->memory().FreePages(), 3U);  // one of the four went to the retry
  EXPECT_EQ(p->memory().oom_events(), 0U);
  // Not a failed allocation, but the pool is told of it (the OOM
  // give-back, counted apart): the partition was short of memory.
  EXPECT_EQ(p->memory().oom_give_backs(), 1U);
  p->kernel().UnregisterOom(rec);
  p->kernel().UnregisterShrinker(cache);
}

TEST_F(Reclaim, ShrinkerThatFreesSparesTheBalloon) {
  Controller& c = p->controller();
  ASSERT_EQ(c.Inflate(Pages(100)), Pages(0));
  TestCache cache(p->memory(), log);
  for (int i = 0; i < 10; ++i) cache.pages.push_back(*p->memory().TryAlloc(PageKind::kMovable));
  ASSERT_EQ(p->kernel().RegisterShrinker(cache), 0);
  FillMemory();
  ASSERT_TRUE(p->memory().Alloc(PageKind::kMovable).has_value());
  EXPECT_EQ(log, (std::vector<std::string>{"shrink"}));
  EXPECT_TRUE(cache.pages.empty());  // a batch of up to 32 pages: all 10
  EXPECT_EQ(p->memory().FreePages(), 9U);
  EXPECT_EQ(c.oom_freed(), Pages(0));
  EXPECT_EQ(c.loaned(), Pages(100));
  // What the allocation had to reclaim first is counted: the pool reads it
  // as pressure (the "a partition's reclaim counts").
  EXPECT_EQ(p->memory().direct_reclaimed(), 10U);
  p->kernel().UnregisterShrinker(cache);
}

TEST_F(Reclaim, NothingLeftRecordsAnOomEventAndSaysWhatWasTried) {
  FillMemory();
  const auto page = p->memory().Alloc(PageKind::kMovable);
  ASSERT_FALSE(page.has_value());
  EXPECT_EQ(page.error().code, ErrorCode::kNoMemory);
  EXPECT_NE(page.error().message.find("out of memory"), std::string::npos) << page.error();
  EXPECT_NE(page.error().message.find("OOM notifiers freed 0"), std::string::npos) << page.error();
  EXPECT_EQ(p->memory().oom_events(), 1U);
  EXPECT_EQ(p->memory().integrity_errors(), 0U);
}

TEST_F(Reclaim, S4_BalloonModeRunsShrinkersOnceAndNeverTheOomChain) {
  Controller& c = p->controller();
  ASSERT_EQ(c.Inflate(Pages(50)), Pages(0));
  TestCache cache(p->memory(), log);
  cache.pages.push_back(*p->memory().TryAlloc(PageKind::kMovable));
  ASSERT_EQ(p->kernel().RegisterShrinker(cache), 0);
  FillMemory();
  EXPECT_EQ(c.Inflate(Pages(5)), Pages(4));  // one page from the cache, then the round stops
  EXPECT_EQ(log, (std::vector<std::string>{"shrink", "shrink"}));
  EXPECT_EQ(c.oom_freed(), Pages(0));
  EXPECT_EQ(c.loaned(), Pages(51));
  EXPECT_EQ(p->memory().oom_events(), 0U);
  EXPECT_EQ(p->memory().direct_reclaimed(), 0U);  // the balloon's own reclaim is not pressure
  p->kernel().UnregisterShrinker(cache);
}

}  // namespace
}  // namespace cmm::guest
