// The hypervisor's side of H_PAGE_INIT: validation with PAPR codes, real
// release of loaned memory, batches coalesced into ranges and stopped at
// the first failure; the memfd checks at registration.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "members/partition/hv_partition.h"

namespace cmm::hv {
namespace {

constexpr uint64_t kCmo = 4096;
// `n` CMO pages' worth of bytes.
constexpr Bytes CmoPages(uint64_t n) { return Bytes(static_cast<int64_t>(n * kCmo)); }

struct FakeBacking final : Backing {
  explicit FakeBacking(std::vector<std::pair<uint64_t, uint64_t>>& log) : log(log) {}
  Result<void> Release(uint64_t offset, uint64_t length) override {
    if (offset == fail_at) return Fail(ErrorCode::kIo, "injected");
    log.emplace_back(offset / kCmo, length / kCmo);
    return {};
  }
  Bytes BackingBytes() const override { return Bytes(0); }
  std::vector<std::pair<uint64_t, uint64_t>>& log;
  uint64_t fail_at = UINT64_MAX;
};

proto::Register Config(uint64_t ram = 64 * kCmo) { return proto::Register{"p1", 4096, ram, 0, 0, 0, true}; }

TEST(HvPageInit, ChecksFlagsAndAddressesWithPaprCodes) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(), kCmo, std::make_unique<FakeBacking>(log));
  EXPECT_EQ(p.PageInit(papr::kPageSetUnused, 0), papr::kParameter);  // not a flag CMM uses
  EXPECT_EQ(p.PageInit(0, 0), papr::kParameter);
  EXPECT_EQ(p.PageInit(papr::kPageSetLoaned, 100), papr::kParameter);        // unaligned
  EXPECT_EQ(p.PageInit(papr::kPageSetLoaned, 64 * kCmo), papr::kParameter);  // past guest RAM
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(p.counts().page_init_failed, 4U);
}

// The words: hcall failures injected.
TEST(HvFaults, InjectedLoanFailuresAnswerHardwareAndChangeNothing) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(4096 * kCmo), kCmo, std::make_unique<FakeBacking>(log), FaultPlan{.fail_loan_percent = 30, .seed = 7});
  int failed = 0;
  for (uint64_t i = 0; i < 1000; ++i) failed += p.PageInit(papr::kPageSetLoaned, i * kCmo) == papr::kHardware;
  EXPECT_GT(failed, 200);
  EXPECT_LT(failed, 400);
  EXPECT_EQ(p.loaned_bytes(), CmoPages(1000 - failed));
  EXPECT_EQ(log.size(), static_cast<size_t>(1000 - failed));  // a failed page is not released
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(p.PageInit(papr::kPageSetActive, i * kCmo), papr::kSuccess);

  // A batch fails at a random page, with the pages before it done.
  std::vector<std::pair<uint64_t, uint64_t>> log2;
  HvPartition q(Config(4096 * kCmo), kCmo, std::make_unique<FakeBacking>(log2), FaultPlan{.fail_loan_percent = 100, .seed = 7});
  std::vector<uint64_t> batch;
  for (uint64_t i = 0; i < 100; ++i) batch.push_back(i * kCmo);
  std::set<uint64_t> positions;
  for (int round = 0; round < 20; ++round) {
    const auto r = q.PageInitBatch(papr::kPageSetLoaned, batch);
    EXPECT_EQ(r.rc, papr::kHardware);
    EXPECT_LT(r.done, 100U);
    EXPECT_EQ(q.loaned_bytes(), CmoPages(r.done));
    positions.insert(r.done);
    for (const uint64_t a : batch) q.PageInit(papr::kPageSetActive, a);
  }
  EXPECT_GT(positions.size(), 5U);  // not always the same page
}

// The words: the pool is never exceeded. A partition's balloon
// keeps back what it gave on OOM from every target (S6's oom_freed), so
// the hypervisor asks that much more: the partition then comes to the
// target the pool counts on instead of deflating on its own.
TEST(HvGetMpp, AsksWhatTheBalloonKeepsBackAfterAnOomGiveBack) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(), kCmo, std::make_unique<FakeBacking>(log));
  for (uint64_t i = 0; i < 10; ++i) ASSERT_EQ(p.PageInit(papr::kPageSetLoaned, i * kCmo), papr::kSuccess);
  p.Assign({CmoPages(20), CmoPages(64), 0});
  proto::Stats stats;
  EXPECT_EQ(p.GetMpp(stats).loan_request, static_cast<int64_t>(10 * kCmo));
  stats.oom_freed_bytes = 3 * kCmo;
  EXPECT_EQ(p.GetMpp(stats).loan_request, static_cast<int64_t>(13 * kCmo));
  // Nothing to loan: nothing more asked for what it keeps back.
  p.Assign({Bytes(0), CmoPages(64), 0});
  EXPECT_EQ(p.GetMpp(stats).loan_request, -static_cast<int64_t>(10 * kCmo));
}

TEST(HvPageInit, LoanedReleasesTheCmoPageActiveCopiesNothing) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(), kCmo, std::make_unique<FakeBacking>(log));
  EXPECT_EQ(p.PageInit(papr::kPageSetLoaned, 3 * kCmo), papr::kSuccess);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, uint64_t>>{{3, 1}}));
  EXPECT_EQ(p.loaned_bytes(), CmoPages(1));
  EXPECT_EQ(p.PageInit(papr::kPageSetActive, 3 * kCmo), papr::kSuccess);
  EXPECT_EQ(log.size(), 1U);  // nothing released or copied
  EXPECT_EQ(p.loaned_bytes(), Bytes(0));
}

TEST(HvPageInitBatch, AdjacentPagesAreReleasedAsOneRange) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(), kCmo, std::make_unique<FakeBacking>(log));
  const std::vector<uint64_t> pages = {0, kCmo, 2 * kCmo, 5 * kCmo, 6 * kCmo, 3 * kCmo};
  const auto r = p.PageInitBatch(papr::kPageSetLoaned, pages);
  EXPECT_EQ(r.rc, papr::kSuccess);
  EXPECT_EQ(r.done, 6U);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 3}, {5, 2}, {3, 1}}));
  EXPECT_EQ(p.loaned_bytes(), CmoPages(6));
  EXPECT_EQ(p.counts().releases, 3U);
  EXPECT_EQ(p.counts().pages_loaned, 6U);
  EXPECT_EQ(p.PageInitBatch(papr::kPageSetActive, std::vector<uint64_t>{0, kCmo}).rc, papr::kSuccess);
  EXPECT_EQ(p.counts().pages_returned, 2U);
}

TEST(HvPageInitBatch, StopsAtTheFirstFailureWithWhatWasDone) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  HvPartition p(Config(), kCmo, std::make_unique<FakeBacking>(log));
  const std::vector<uint64_t> pages = {0, kCmo, 7, 3 * kCmo};
  const auto r = p.PageInitBatch(papr::kPageSetLoaned, pages);
  EXPECT_EQ(r.rc, papr::kParameter);
  EXPECT_EQ(r.done, 2U);
  EXPECT_EQ(log, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 2}}));
  EXPECT_EQ(p.loaned_bytes(), CmoPages(2));  // page 3 untouched
}

TEST(HvPageInitBatch, AReleaseThatFailsIsNotDone) {
  std::vector<std::pair<uint64_t, uint64_t>> log;
  auto backing = std::make_unique<FakeBacking>(log);
  backing->fail_at = 10 * kCmo;
  HvPartition p(Config(), kCmo, std::move(backing));
  const std::vector<uint64_t> pages = {0, kCmo, 10 * kCmo, 11 * kCmo};
  const auto r = p.PageInitBatch(papr::kPageSetLoaned, pages);
  EXPECT_EQ(r.rc, papr::kHardware);
  EXPECT_EQ(r.done, 2U);
  EXPECT_EQ(p.loaned_bytes(), CmoPages(2));
}

// ---- the real memfd ----

int Memfd(uint64_t size, bool seal) {
  const int fd = memfd_create("hvtest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  if (seal) {
    EXPECT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  }
  return fd;
}

TEST(MemfdBacking, RefusesUnsealedWrongSizeAndNonMemfd) {
  auto unsealed = MemfdBacking(Memfd(1 << 20, false), 1 << 20);
  ASSERT_FALSE(unsealed.has_value());
  EXPECT_EQ(unsealed.error().code, ErrorCode::kInvalid);  // a request refused, not the host failing
  EXPECT_NE(unsealed.error().message.find("sealed"), std::string::npos);
  auto size = MemfdBacking(Memfd(1 << 20, true), 2 << 20);
  ASSERT_FALSE(size.has_value());
  EXPECT_NE(size.error().message.find("is 1048576 bytes but the partition said 2097152"), std::string::npos);
  int pipes[2];
  ASSERT_EQ(pipe(pipes), 0);
  close(pipes[1]);
  EXPECT_FALSE(MemfdBacking(pipes[0], 0).has_value());
}

TEST(MemfdBacking, LoanedPagesGiveTheirMemoryBackForReal) {
  constexpr uint64_t kRam = 8 << 20;
  const int fd = Memfd(kRam, true);
  auto* ram = static_cast<uint8_t*>(mmap(nullptr, kRam, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(ram, MAP_FAILED);
  std::memset(ram, 0xCD, kRam);
  auto backing = MemfdBacking(dup(fd), kRam);
  ASSERT_TRUE(backing.has_value()) << backing.error();
  HvPartition p(Config(kRam), kCmo, std::move(*backing));
  const Bytes before = p.backing_bytes();
  EXPECT_GE(before, FromUnsigned<Bytes>(kRam));
  std::vector<uint64_t> pages;
  for (uint64_t a = 0; a < (4 << 20); a += kCmo) pages.push_back(a);  // 1024 CMO pages, one range
  const auto r = p.PageInitBatch(papr::kPageSetLoaned, pages);
  ASSERT_EQ(r.rc, papr::kSuccess);
  EXPECT_EQ(p.counts().releases, 1U);
  EXPECT_LE(p.backing_bytes(), before - MiB(4));
  EXPECT_EQ(p.PageInit(papr::kPageSetActive, 0), papr::kSuccess);
  EXPECT_EQ(ram[0], 0);  // a loaned page's contents are gone
  EXPECT_EQ(ram[(4 << 20) + 1], 0xCD);
  munmap(ram, kRam);
  close(fd);
}

}  // namespace
}  // namespace cmm::hv
