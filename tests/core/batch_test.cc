// The batched page-state call (cmm's extension to S4/S5): the controller
// loans and returns many CMO pages per hcall, and the state it leaves is the
// state the seed's one call per CMO page leaves, failures included.
#include <gtest/gtest.h>

#include <memory>

#include "fakes.h"

namespace cmm::testing {

using papr::kPageSetActive;
using papr::kPageSetLoaned;

namespace {

constexpr uint64_t k4K = 4096;
constexpr uint64_t k64K = 65536;

// Everything the outside world can observe after a round.
struct Outcome {
  int64_t unfulfilled = 0;
  std::set<uint64_t> hv_loaned;
  std::vector<Pfn> balloon;
  std::vector<FakeGuestMemory::State> pages;
  int64_t loaned = 0;
  int64_t totalram = 0;
  std::vector<std::string> errors;
  friend bool operator==(const Outcome&, const Outcome&) = default;
};

std::unique_ptr<Rig> MakeRig(uint64_t pages, uint64_t page_size, uint64_t max_batch) {
  auto r = std::make_unique<Rig>(pages, Rig::Defaults(), page_size);
  r->hv.max_batch = max_batch;
  return r;
}

Outcome Observe(const Rig& r, int64_t unfulfilled) {
  Outcome o;
  o.unfulfilled = unfulfilled;
  o.hv_loaned = r.hv.loaned;
  o.balloon = r.ctrl.balloon().Snapshot();
  for (uint64_t i = 0; i < r.mem.PageSpan(); ++i) o.pages.push_back(r.mem.state(Pfn{i}));
  o.loaned = r.ctrl.loaned().value();
  o.totalram = r.mem.Totalram().value();
  o.errors = r.log.error;
  return o;
}

// Fails the n-th (0-based) call with `flags`; with `sticky`, every later one too.
void FailAt(Rig& r, uint64_t flags, int n, bool sticky) {
  auto seen = std::make_shared<int>(0);
  r.hv.fail = [=](uint64_t f, uint64_t) {
    if (f != flags) return papr::kSuccess;
    const int i = (*seen)++;
    return (i == n || (sticky && i > n)) ? papr::kNotEnoughResources : papr::kSuccess;
  };
}

Outcome InflateWithFailure(uint64_t page_size, uint64_t max_batch, int n, bool sticky, bool deferred = false) {
  auto r = MakeRig(8, page_size, max_batch);
  r->hv.deferred = deferred;
  FailAt(*r, kPageSetLoaned, n, sticky);
  const int64_t left = r->ctrl.Inflate(Pages(7)).value();
  return Observe(*r, left);
}

Outcome DeflateWithFailure(uint64_t page_size, uint64_t max_batch, int n, bool sticky) {
  auto r = MakeRig(8, page_size, max_batch);
  EXPECT_EQ(r->ctrl.Inflate(Pages(7)), Pages(0));
  FailAt(*r, kPageSetActive, n, sticky);
  const int64_t left = r->ctrl.Deflate(Pages(6)).value();
  return Observe(*r, left);
}

}  // namespace

TEST(Batch, S4_InflateSendsOneCallPerBatchInAscendingOrder) {
  auto r = MakeRig(1024, k4K, 256);
  EXPECT_EQ(r->ctrl.Inflate(Pages(1000)), Pages(0));
  EXPECT_EQ(r->hv.batch_calls, 4);  // 256 + 256 + 256 + 232
  ASSERT_EQ(r->hv.calls.size(), 1000U);
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(r->hv.calls[i], (HcallRecord{kPageSetLoaned, i * k4K}));
  EXPECT_EQ(r->ctrl.loaned(), Pages(1000));
  EXPECT_EQ(r->mem.Totalram(), Pages(24));
}

// The words: the partition picks and records the next batch's
// pages while the hypervisor works on the current one.
TEST(Batch, S4_TwoBatchesAreInFlightWhileTheHypervisorWorks) {
  auto r = MakeRig(1024, k4K, 256);
  r->hv.deferred = true;
  EXPECT_EQ(r->ctrl.Inflate(Pages(1000)), Pages(0));
  EXPECT_EQ(r->hv.max_in_flight, 2U);
  EXPECT_EQ(r->hv.batch_calls, 4);
  ASSERT_EQ(r->hv.calls.size(), 1000U);
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(r->hv.calls[i], (HcallRecord{kPageSetLoaned, i * k4K}));
  EXPECT_EQ(r->ctrl.loaned(), Pages(1000));
  EXPECT_EQ(r->mem.Count(FakeGuestMemory::State::kBalloon), 1000U);
}

TEST(Batch, S5_DeflateSendsOneCallPerBatch) {
  auto r = MakeRig(1024, k4K, 256);
  ASSERT_EQ(r->ctrl.Inflate(Pages(1000)), Pages(0));
  r->hv.batch_calls = 0;
  EXPECT_EQ(r->ctrl.Deflate(Pages(1000)), Pages(0));
  EXPECT_EQ(r->hv.batch_calls, 4);
  EXPECT_TRUE(r->hv.loaned.empty());
  EXPECT_EQ(r->mem.Count(FakeGuestMemory::State::kFree), 1024U);
}

TEST(Batch, S4_LargePagesCarryAllTheirCmoPages) {
  auto r = MakeRig(16, k64K, 64);  // 4 pages of 16 CMO pages per call
  EXPECT_EQ(r->ctrl.Inflate(Pages(10)), Pages(0));
  EXPECT_EQ(r->hv.batch_calls, 3);
  EXPECT_EQ(r->hv.loaned.size(), 160U);
}

TEST(Batch, SingleCallWhenABatchCannotHoldTwoPages) {
  auto r = MakeRig(16, k64K, 16);
  EXPECT_EQ(r->ctrl.Inflate(Pages(2)), Pages(0));
  EXPECT_EQ(r->hv.batch_calls, 0);
  EXPECT_EQ(r->hv.loaned.size(), 32U);
}

// The words: the batched and single-call paths give identical
// state with failures injected at every position.
TEST(Batch, S4_InflateFailureAtEveryPositionLeavesTheSingleCallState) {
  for (const uint64_t page_size : {k4K, k64K}) {
    const int positions = static_cast<int>(7 * (page_size / k4K));
    const uint64_t max_batch = 3 * (page_size / k4K);  // batches of 3 pages: failures land mid-batch and at edges
    for (const bool sticky : {false, true}) {
      for (int n = 0; n < positions; ++n) {
        SCOPED_TRACE(::testing::Message() << "page " << page_size << " failing call " << n << " sticky " << sticky);
        const Outcome single = InflateWithFailure(page_size, 0, n, sticky);
        const Outcome batched = InflateWithFailure(page_size, max_batch, n, sticky);
        // Two batches in flight, the second done by the hypervisor only
        // after the first failed: undone, as if never sent.
        const Outcome in_flight = InflateWithFailure(page_size, max_batch, n, sticky, true);
        EXPECT_EQ(batched, single);
        EXPECT_EQ(in_flight, single);
        EXPECT_EQ(single.errors.size(), 1U);
      }
    }
  }
}

TEST(Batch, S5_DeflateFailureAtEveryPositionLeavesTheSingleCallState) {
  for (const uint64_t page_size : {k4K, k64K}) {
    const int positions = static_cast<int>(6 * (page_size / k4K));
    const uint64_t max_batch = 3 * (page_size / k4K);
    for (const bool sticky : {false, true}) {
      for (int n = 0; n < positions; ++n) {
        SCOPED_TRACE(::testing::Message() << "page " << page_size << " failing call " << n << " sticky " << sticky);
        const Outcome single = DeflateWithFailure(page_size, 0, n, sticky);
        const Outcome batched = DeflateWithFailure(page_size, max_batch, n, sticky);
        EXPECT_EQ(batched, single);
        EXPECT_EQ(single.loaned, 1);  // a failed deflate still frees the page
      }
    }
  }
}

TEST(Batch, S12_HotRemoveDuringTheBatchStopsItWhereTheSingleLoopStops) {
  for (const uint64_t max_batch : {uint64_t{0}, uint64_t{64}}) {
    auto r = MakeRig(64, k4K, max_batch);
    r->mem.before_alloc = [&] {
      if (r->mem.alloc_calls == 4) r->ctrl.OnMemoryEvent(MemoryAction::kGoingOffline);
    };
    // The fourth allocation happens, then the next page's check sees the lock.
    EXPECT_EQ(r->ctrl.Inflate(Pages(10)), Pages(6)) << "max_batch " << max_batch;
    EXPECT_EQ(r->ctrl.loaned(), Pages(4));
    EXPECT_EQ(r->hv.loaned.size(), 4U);
    EXPECT_EQ(r->mem.Count(FakeGuestMemory::State::kBalloon), 4U);
  }
}

TEST(Batch, S4_AllocationFailureLoansWhatWasTaken) {
  auto r = MakeRig(5, k4K, 64);
  EXPECT_EQ(r->ctrl.Inflate(Pages(10)), Pages(5));
  EXPECT_EQ(r->hv.batch_calls, 1);
  EXPECT_EQ(r->hv.loaned.size(), 5U);
}

TEST(Batch, S1_SimulateMakesNoCalls) {
  ParamValues p = Rig::Defaults();
  p.simulate = true;
  Rig r(64, p);
  r.hv.max_batch = 64;
  EXPECT_EQ(r.ctrl.Inflate(Pages(10)), Pages(0));
  EXPECT_EQ(r.hv.batch_calls, 0);
  EXPECT_TRUE(r.hv.calls.empty());
}

}  // namespace cmm::testing
