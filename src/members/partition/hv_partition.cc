#include "members/partition/hv_partition.h"

#include <spdlog/spdlog.h>

namespace cmm::hv {

HvPartition::HvPartition(proto::Register config, uint64_t cmo_page_size, std::unique_ptr<Backing> backing,
                         FaultPlan faults)
    : config_(std::move(config)),
      cmo_page_size_(cmo_page_size),
      backing_(std::move(backing)),
      loaned_(config_.ram_bytes / cmo_page_size),
      fail_loan_percent_(faults.fail_loan_percent),
      rng_(faults.seed ^ std::hash<std::string>{}(config_.name)) {
  assignment_.weight = config_.weight;
}

uint64_t HvPartition::InjectedFailureLocked(uint64_t flags, uint64_t n) {
  if (fail_loan_percent_ == 0 || flags != papr::kPageSetLoaned || n == 0 || rng_() % 100 >= fail_loan_percent_) return n;
  return rng_() % n;
}

papr::Rc HvPartition::Check(uint64_t flags, uint64_t address) const {
  if (flags != papr::kPageSetLoaned && flags != papr::kPageSetActive) return papr::kParameter;
  if (address % cmo_page_size_ != 0 || address >= config_.ram_bytes) return papr::kParameter;
  return papr::kSuccess;
}

papr::Rc HvPartition::ApplyLocked(uint64_t flags, uint64_t first, uint64_t n) {
  if (flags == papr::kPageSetActive) {
    for (uint64_t i = first; i < first + n; ++i) loaned_.Clear(i);
    counts_.pages_returned += n;
    return papr::kSuccess;
  }
  ++counts_.releases;
  if (auto r = backing_->Release(first * cmo_page_size_, n * cmo_page_size_); !r) {
    spdlog::error("partition {}: {}", config_.name, r.error().message);
    return papr::kHardware;
  }
  for (uint64_t i = first; i < first + n; ++i) loaned_.Set(i);
  counts_.pages_loaned += n;
  return papr::kSuccess;
}

papr::Rc HvPartition::PageInit(uint64_t flags, uint64_t address) {
  MutexLock lock(mu_);
  ++counts_.page_init;
  papr::Rc rc = Check(flags, address);
  if (rc == papr::kSuccess && InjectedFailureLocked(flags, 1) == 0) rc = papr::kHardware;
  if (rc == papr::kSuccess) rc = ApplyLocked(flags, address / cmo_page_size_, 1);
  if (rc != papr::kSuccess) ++counts_.page_init_failed;
  return rc;
}

proto::PageInitBatchRc HvPartition::PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses) {
  MutexLock lock(mu_);
  ++counts_.batches;
  proto::PageInitBatchRc out;
  uint64_t run_first = 0, run_n = 0;  // the pending range of CMO pages
  // Applies the pending range; its pages count as done only if that worked.
  auto flush = [&]() REQUIRES(mu_) -> papr::Rc {
    if (run_n == 0) return papr::kSuccess;
    const papr::Rc rc = ApplyLocked(flags, run_first, run_n);
    if (rc == papr::kSuccess) out.done += static_cast<uint32_t>(run_n);
    run_n = 0;
    return rc;
  };
  const uint64_t fail_at = InjectedFailureLocked(flags, addresses.size());
  for (uint64_t i = 0; i < addresses.size(); ++i) {
    const uint64_t address = addresses[i];
    papr::Rc rc = i == fail_at ? papr::kHardware : Check(flags, address);
    if (rc != papr::kSuccess) {
      out.rc = flush();
      if (out.rc == papr::kSuccess) out.rc = rc;
      break;
    }
    const uint64_t page = address / cmo_page_size_;
    if (run_n > 0 && page != run_first + run_n) {
      out.rc = flush();
      if (out.rc != papr::kSuccess) break;
    }
    if (run_n == 0) run_first = page;
    ++run_n;
  }
  if (out.rc == papr::kSuccess) out.rc = flush();
  counts_.page_init += out.done + (out.rc != papr::kSuccess ? 1 : 0);
  counts_.page_init_failed += out.rc != papr::kSuccess ? 1 : 0;
  return out;
}

papr::MppData HvPartition::GetMpp(const proto::Stats& stats) {
  MutexLock lock(mu_);
  stats_ = stats;
  stats_taken_ = MemberClock::now();
  // Before the loan this call asks for: its balloon inflates after it.
  stats_loaned_ = LoanedBytesLocked();
  ++counts_.get_mpp;
  papr::MppData d;
  d.entitled_mem = static_cast<int64_t>(config_.ram_bytes);
  d.mapped_entitled_mem = -1;
  d.pool_size = assignment_.pool_bytes.value();
  d.backing_mem = backing_->BackingBytes().value();
  d.mem_weight = assignment_.weight;
  // Its balloon keeps back from every target what it gave on OOM (until
  // oom_freed_kb is reset): ask that much more, so it comes to the target
  // the pool counts on instead of deflating on its own.
  const Bytes target = assignment_.target_loaned_bytes;
  const Bytes asked =
      target == Bytes(0) ? Bytes(0) : std::min(ram_bytes(), target + FromUnsigned<Bytes>(stats.oom_freed_bytes));
  d.loan_request = (asked - LoanedBytesLocked()).value();
  return d;
}

void HvPartition::Assign(const Assignment& a) {
  MutexLock lock(mu_);
  assignment_ = a;
}

MemberState HvPartition::Observe() const {
  MemberState s;
  s.ram_bytes = ram_bytes();
  s.backing_bytes = backing_->BackingBytes();
  s.backing_source = "memfd";
  MutexLock lock(mu_);
  s.loaned_bytes = LoanedBytesLocked();
  s.stats.free_bytes = FromUnsigned<Bytes>(stats_.free_bytes);
  s.stats.used_bytes = FromUnsigned<Bytes>(stats_.used_bytes);
  s.stats.cache_bytes = FromUnsigned<Bytes>(stats_.cache_bytes);
  s.stats.oom_events = stats_.oom_events;
  s.stats.taken = stats_taken_;
  s.stats.loaned_bytes = stats_loaned_;
  s.stats.reclaimed = FromUnsigned<Bytes>(stats_.reclaimed_bytes);
  s.counts = counts_;
  return s;
}

Bytes HvPartition::loaned_bytes() const {
  MutexLock lock(mu_);
  return LoanedBytesLocked();
}

HcallCounts HvPartition::counts() const {
  MutexLock lock(mu_);
  return counts_;
}

}  // namespace cmm::hv
