// Randomized sequences on a real partition (issue: 10 000+ operations of
// alloc, free, touch, inflate, deflate, hot-add, hot-remove and OOM) with
// the invariant checker after every one: every page in exactly one place,
// totals adding up, no integrity error, every page's data intact.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <unordered_map>

#include "guest/partition.h"
#include "guest/pattern.h"

namespace cmm::guest {
namespace {

constexpr Bytes kBlock = MiB(1);  // 256 pages
constexpr uint64_t kSteps = 12000;

class RandomGuest {
 public:
  explicit RandomGuest(uint64_t seed) : rng_(seed) {
    PartitionOptions o;
    o.name = "random";
    o.ram_bytes = 4 * kBlock;
    o.max_bytes = 8 * kBlock;
    o.block_bytes = kBlock;
    o.params.simulate = true;
    o.params.min_mem_mb = 0;
    o.params.oom_kb = 64;  // 16 pages per give-back
    o.params.disable = 1;  // driven here, not by the poll thread
    p_ = std::move(*Partition::Create(o));
    EXPECT_EQ(p_->Start(), 0);
  }

  void Run() {
    for (uint64_t i = 0; i < kSteps; ++i) {
      Step();
      Check(i);
      if (::testing::Test::HasFailure()) return;
    }
    for (const auto& [h, gen] : held_) Verify(h);
    for (const auto& [h, gen] : held_) m().Free(Handle{h});
    held_.clear();
    p_->Stop();
    Check(kSteps);
  }

  uint64_t removed = 0, cancelled = 0, oom_given = 0, migrated = 0, oom_events = 0;

 private:
  PageAllocator& m() { return p_->memory(); }
  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  void Fill(Handle h, uint64_t gen) {
    m().Access(h, [&](std::span<uint8_t> b, uint64_t& g) {
      g = gen;
      FillPattern(b, h.value, g);
    });
  }
  void Verify(uint64_t h) {
    bool good = false;
    m().Access(Handle{h}, [&](std::span<uint8_t> b, uint64_t& g) { good = g == held_[h] && CheckPattern(b, h, g); });
    EXPECT_TRUE(good) << "handle " << h;
  }
  uint64_t AnyHeld() {
    auto it = held_.begin();
    std::advance(it, static_cast<long>(Pick(held_.size())));
    return it->first;
  }

  void Step() {
    Controller& c = p_->controller();
    switch (Pick(10)) {
      case 0:
      case 1: {  // allocate movable pages through the reclaim path
        const uint64_t n = 1 + Pick(40);
        for (uint64_t i = 0; i < n; ++i) {
          auto h = m().Alloc(PageKind::kMovable);
          if (!h) break;
          Fill(*h, 1);
          held_[h->value] = 1;
        }
        break;
      }
      case 2:
        if (auto h = m().TryAlloc(PageKind::kUnmovable); h && Pick(4) == 0) {
          Fill(*h, 1);
          held_[h->value] = 1;
        } else if (h) {
          m().Free(*h);
        }
        break;
      case 3:  // free
        for (uint64_t n = Pick(64); n > 0 && !held_.empty(); --n) {
          const uint64_t h = AnyHeld();
          Verify(h);
          m().Free(Handle{h});
          held_.erase(h);
        }
        break;
      case 4:  // touch
        for (uint64_t n = Pick(16); n > 0 && !held_.empty(); --n) {
          const uint64_t h = AnyHeld();
          Verify(h);
          Fill(Handle{h}, ++held_[h]);
        }
        break;
      case 5:
        c.Inflate(Pages(static_cast<int64_t>(1 + Pick(200))));
        break;
      case 6:
        c.Deflate(Pages(static_cast<int64_t>(Pick(150))));
        break;
      case 7: {  // hot-add or hot-remove
        if (Pick(2) == 0) {
          (void)p_->HotAdd(kBlock);
          break;
        }
        const auto r = p_->HotRemove(Pick(8));
        if (r) {
          ++removed;
          migrated += r->movable_migrated + r->balloon_migrated;
        } else if (r.error().code == ErrorCode::kBusy) {
          ++cancelled;
        }
        break;
      }
      case 8:
        p_->kernel().NotifyOom();
        break;
      case 9:
        for (uint64_t n = Pick(32); n > 0; --n) (void)p_->cache().Read(Pick(2048));
        break;
    }
  }

  void Check(uint64_t step) {
    const auto ok = m().CheckInvariants();
    ASSERT_TRUE(ok.has_value()) << "step " << step << ": " << ok.error();
    const auto balloon = p_->controller().balloon().Snapshot();
    ASSERT_EQ(m().Counts().balloon, balloon.size()) << "step " << step;
    ASSERT_EQ(static_cast<uint64_t>(p_->controller().loaned().value()), balloon.size()) << "step " << step;
    for (const Pfn page : balloon) ASSERT_EQ(m().StateOf(page), FrameState::kBalloon) << "step " << step;
    ASSERT_EQ(m().integrity_errors(), 0U) << "step " << step << ": " << m().last_integrity_error();
    ASSERT_FALSE(p_->controller().Snapshot().hotplug_held);
    if (step % 1000 == 0) {
      for (const auto& [h, gen] : held_) Verify(h);
    }
    oom_events = m().oom_events();
    oom_given = static_cast<uint64_t>(p_->controller().oom_freed().value());  // by the OOM chain, either way
  }

  std::mt19937_64 rng_;
  std::unique_ptr<Partition> p_;
  std::unordered_map<uint64_t, uint64_t> held_;  // handle -> generation
};

TEST(GuestRandom, TwelveThousandOperationsKeepEveryInvariant) {
  // CMM_RANDOM_SEED explores other sequences; the default keeps CI repeatable.
  const char* seed = std::getenv("CMM_RANDOM_SEED");
  RandomGuest g(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 20261125);
  g.Run();
  std::printf("removed %lu, cancelled %lu, migrated %lu, oom given back %lu, oom events %lu\n", g.removed, g.cancelled,
              g.migrated, g.oom_given, g.oom_events);
  // The run reached the interesting places, not only the easy ones.
  EXPECT_GT(g.removed, 20U);
  EXPECT_GT(g.cancelled, 20U);
  EXPECT_GT(g.migrated, 1000U);
  EXPECT_GT(g.oom_given, 50U);
}

}  // namespace
}  // namespace cmm::guest
