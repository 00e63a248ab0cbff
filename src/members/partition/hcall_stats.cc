#include "members/partition/hcall_stats.h"

#include <algorithm>

namespace cmm::hv {

const char* HcallName(Hcall call) {
  switch (call) {
    case Hcall::kGetMpp: return "H_GET_MPP";
    case Hcall::kPageInit: return "H_PAGE_INIT";
    case Hcall::kPageInitBatch: return "H_PAGE_INIT_BATCH";
  }
  return "?";
}

void HcallStats::Record(Hcall call, papr::Rc rc, std::chrono::nanoseconds took) {
  const double s = std::chrono::duration<double>(took).count();
  const size_t bucket =
      std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), s) - kLatencyBuckets.begin();
  MutexLock lock(mu_);
  ++snapshot_.calls[{call, rc}];
  LatencyHistogram& h = snapshot_.latency[call];
  ++h.counts[bucket];
  h.sum_seconds += s;
  ++h.total;
}

HcallStats::Snapshot HcallStats::Read() const {
  MutexLock lock(mu_);
  return snapshot_;
}

}  // namespace cmm::hv
