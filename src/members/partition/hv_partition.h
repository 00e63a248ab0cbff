// One registered partition as the hypervisor sees it: its configuration,
// the state of each CMO page of its RAM, its last reported stats, and the
// hcalls that change them. Setting a page loaned releases its memory for
// real; setting it active copies nothing (it comes back zeroed on touch).
// As a pool member, its target waits for its next H_GET_MPP.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>

#include "core/bitmap.h"
#include "core/mutex.h"
#include "members/partition/backing.h"
#include "pool/member.h"
#include "papr/papr.h"
#include "proto/messages.h"

namespace cmm::hv {

// Faults the hypervisor injects, for testing the partitions' error paths.
struct FaultPlan {
  // Of the calls that loan pages, this percent fails with H_HARDWARE: a
  // single call outright, a batch at a random page of it.
  uint32_t fail_loan_percent = 0;
  uint64_t seed = 1;
};

class HvPartition final : public Member {
 public:
  HvPartition(proto::Register config, uint64_t cmo_page_size, std::unique_ptr<Backing> backing,
              FaultPlan faults = {});

  // H_PAGE_INIT on one CMO page: H_PARAMETER for flags other than
  // H_PAGE_SET_LOANED / H_PAGE_SET_ACTIVE, or an address that is not a
  // CMO page inside guest RAM; H_HARDWARE if the memory cannot be released.
  papr::Rc PageInit(uint64_t flags, uint64_t address);
  // The same on several pages in order, stopping at the first failure;
  // adjacent ascending pages are released as one range.
  proto::PageInitBatchRc PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses);

  // H_GET_MPP: takes the partition's stats, answers with its assignment
  // (loan_request = target less what it has loaned now).
  papr::MppData GetMpp(const proto::Stats& stats);

  const std::string& name() const override { return config_.name; }
  MemberKind kind() const override { return MemberKind::kPartition; }
  Bytes ram_bytes() const override { return FromUnsigned<Bytes>(config_.ram_bytes); }
  MemberState Observe() const override;
  void Assign(const Assignment& a) override;

  const proto::Register& config() const { return config_; }
  uint64_t cmo_page_size() const { return cmo_page_size_; }
  Bytes loaned_bytes() const;
  Bytes backing_bytes() const { return backing_->BackingBytes(); }
  HcallCounts counts() const;

 private:
  papr::Rc Check(uint64_t flags, uint64_t address) const;
  Bytes LoanedBytesLocked() const REQUIRES(mu_) {
    return Bytes(static_cast<int64_t>(loaned_.count() * cmo_page_size_));
  }
  // Where this call fails on purpose: a page index below n, or n for nowhere.
  uint64_t InjectedFailureLocked(uint64_t flags, uint64_t n) REQUIRES(mu_);
  // Applies the state change to pages [first, first + n) of CMO pages.
  papr::Rc ApplyLocked(uint64_t flags, uint64_t first, uint64_t n) REQUIRES(mu_);

  const proto::Register config_;
  const uint64_t cmo_page_size_;
  std::unique_ptr<Backing> backing_;
  mutable Mutex mu_;  // guards everything below
  PageBitmap loaned_ GUARDED_BY(mu_);      // one bit per CMO page
  proto::Stats stats_ GUARDED_BY(mu_);
  MemberClock::time_point stats_taken_ GUARDED_BY(mu_){};
  Bytes stats_loaned_ GUARDED_BY(mu_);
  Assignment assignment_ GUARDED_BY(mu_);
  HcallCounts counts_ GUARDED_BY(mu_);
  const uint32_t fail_loan_percent_;
  std::mt19937_64 rng_ GUARDED_BY(mu_);
};

}  // namespace cmm::hv
