// 100 000 random operations against the controller, with every invariant
// checked after each step: pages in the balloon + free + used = total, no
// page twice, loaned equals the balloon's size, and exactly the balloon's
// pages are loaned at the hypervisor.
#include <cerrno>
#include <random>

#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

namespace {

constexpr uint64_t kPages = 512;
constexpr uint64_t kPageSize = 16384;  // 4 CMO pages each, so rollbacks are exercised
constexpr uint64_t kCmo = 4096;

void CheckInvariants(Rig& r, uint64_t used_by_test) {
  using S = FakeGuestMemory::State;
  const auto balloon = r.ctrl.balloon().Snapshot();
  std::set<uint64_t> seen;
  for (Pfn p : balloon) {
    ASSERT_TRUE(seen.insert(p.value).second) << "page " << p.value << " twice in the balloon";
    ASSERT_EQ(r.mem.state(p), S::kBalloon) << "balloon page " << p.value << " not the balloon's in memory";
  }
  ASSERT_EQ(static_cast<uint64_t>(r.ctrl.loaned().value()), balloon.size());
  ASSERT_EQ(r.mem.Count(S::kBalloon), balloon.size());
  ASSERT_EQ(r.mem.Count(S::kUsed), used_by_test);
  ASSERT_EQ(r.mem.Count(S::kFree) + r.mem.Count(S::kUsed) + r.mem.Count(S::kBalloon), kPages);
  ASSERT_EQ(r.mem.Totalram().value() + r.ctrl.loaned().value(), static_cast<int64_t>(kPages));
  // Exactly the balloon's CMO pages are loaned at the hypervisor.
  std::set<uint64_t> want;
  for (Pfn p : balloon) {
    for (uint64_t a = 0; a < kPageSize; a += kCmo) want.insert(p.value * kPageSize + a);
  }
  ASSERT_EQ(r.hv.loaned, want);
  ASSERT_GE(r.ctrl.loaned_target().value(), 0);
}

}  // namespace

TEST(Randomized, AllItems_HundredThousandOperationsKeepInvariants) {
  std::mt19937_64 rng(20261125);
  ParamValues p = Rig::Defaults();
  p.min_mem_mb = 1;  // 64 pages of 16 KiB
  p.oom_kb = 256;    // 16 pages
  Rig r(kPages, p, kPageSize, /*normal_pages=*/kPages / 2);
  r.hv.record = false;
  ASSERT_EQ(r.ctrl.Start(), 0);
  std::vector<Pfn> used;
  bool removing = false;
  int fail_rate = 0;  // percent of PageInit calls that fail
  // Only loaning fails: a failed activation leaves the page loaned at the
  // hypervisor by design (S5 ignores it), which this invariant would flag.
  r.hv.fail = [&](uint64_t flags, uint64_t) {
    return flags == papr::kPageSetLoaned && static_cast<int>(rng() % 100) < fail_rate ? papr::kNotEnoughResources
                                                                                      : papr::kSuccess;
  };
  auto pick = [&](uint64_t n) { return rng() % n; };
  // Evidence that the run reached the states it claims to test.
  int64_t max_loaned = 0;
  int migrated = 0, busy = 0, oom_gave = 0;

  for (int step = 0; step < 100000; ++step) {
    switch (pick(12)) {
      case 0:  // the hypervisor changes its request
        r.Request((static_cast<int64_t>(pick(kPages * 2)) - static_cast<int64_t>(kPages)) *
                  static_cast<int64_t>(kPageSize) / 2);
        break;
      case 1:
      case 2:  // time passes: the poll loop runs
        r.RunFor(std::chrono::seconds(1 + pick(3)));
        break;
      case 3: {  // OOM
        Pages freed(0);
        r.ctrl.OnOom(freed);
        oom_gave += freed.value() > 0;
        if (pick(4) == 0) {
          ASSERT_TRUE(r.ctrl.files().Write("oom_freed_kb", "0", Writer{true}).has_value());
        }
        break;
      }
      case 4:  // hot-remove begins or ends
        if (!removing) {
          r.ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
        } else {
          r.ctrl.OnMemoryEvent(pick(2) ? MemoryAction::kOffline : MemoryAction::kCancelOffline);
        }
        removing = !removing;
        break;
      case 5:  // disable / enable
        ASSERT_TRUE(r.ctrl.files().Write("disable", pick(2) ? "1" : "0", Writer{true}).has_value());
        if (r.ctrl.disabled()) {
          ASSERT_EQ(r.ctrl.loaned(), Pages(0));
        }
        break;
      case 6: {  // compaction: migrate a random balloon page
        const auto pages = r.ctrl.balloon().Snapshot();
        if (pages.empty()) break;
        const Pfn old = pages[pick(pages.size())];
        const auto fresh = r.mem.TakeFreeIn(pick(2) ? Zone::kNormal : Zone::kMovable);
        if (!fresh) break;
        ASSERT_TRUE(r.ctrl.IsolatePage(old));
        const int rc = r.ctrl.MigratePage(old, *fresh);
        if (rc == EBUSY) {
          r.ctrl.PutbackPage(old);
          r.mem.FreePage(*fresh);
          ++busy;
        } else {
          ++migrated;
          ASSERT_EQ(rc, 0);
          r.mem.set_state(*fresh, FakeGuestMemory::State::kBalloon);
        }
        break;
      }
      case 7:  // hcall failures come and go
        fail_rate = pick(3) == 0 ? static_cast<int>(pick(30)) : 0;
        break;
      case 8:  // the rest of the guest takes or frees memory
        if (auto page = r.mem.TakeUsed()) used.push_back(*page);
        break;
      case 9:
        if (!used.empty()) {
          const size_t i = pick(used.size());
          r.mem.FreePage(used[i]);
          used.erase(used.begin() + static_cast<long>(i));
        }
        break;
      case 10:  // restart (the thread stops) and, later, enable again
        if (pick(8) == 0) {
          r.kernel.reboot->OnReboot(RebootAction::kRestart);
          ASSERT_EQ(r.ctrl.loaned(), Pages(0));
          ASSERT_TRUE(r.ctrl.files().Write("disable", "1", Writer{true}).has_value());
        }
        break;
      case 11:  // parameters change; the hypervisor offers batches or not
        r.hv.max_batch = pick(3) == 0 ? 0 : 4 * (2 + pick(64));
        ASSERT_TRUE(r.ctrl.files().Write("min_mem_mb", std::to_string(pick(4)), Writer{}).has_value());
        break;
    }
    CheckInvariants(r, used.size());
    max_loaned = std::max(max_loaned, r.ctrl.loaned().value());
    if (::testing::Test::HasFatalFailure()) FAIL() << "at step " << step;
  }
  EXPECT_GT(max_loaned, static_cast<int64_t>(kPages / 2));
  EXPECT_GT(migrated, 100);
  EXPECT_GT(busy, 10);
  EXPECT_GT(oom_gave, 100);
  EXPECT_GT(r.hv.batch_calls, 1000);
  if (removing) r.ctrl.OnMemoryEvent(MemoryAction::kOffline);
  r.hv.fail = nullptr;
  r.ctrl.Stop();
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_TRUE(r.hv.loaned.empty());
}

}  // namespace cmm::testing
