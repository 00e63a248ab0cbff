// What the hypervisor counts of the hcalls it answers: calls by kind and
// return code, and how long each took from packet in to reply out (a
// histogram with fixed buckets, as Prometheus wants them).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <utility>

#include "core/mutex.h"
#include "papr/papr.h"

namespace cmm::hv {

enum class Hcall : uint8_t { kGetMpp, kPageInit, kPageInitBatch };
inline constexpr std::array<Hcall, 3> kHcalls = {Hcall::kGetMpp, Hcall::kPageInit, Hcall::kPageInitBatch};
const char* HcallName(Hcall call);  // "H_GET_MPP", "H_PAGE_INIT", "H_PAGE_INIT_BATCH"

// Upper bounds of the latency buckets, in seconds (+Inf is implied).
inline constexpr std::array<double, 12> kLatencyBuckets = {5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                                           5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 1e-1};

struct LatencyHistogram {
  std::array<uint64_t, kLatencyBuckets.size() + 1> counts{};  // per bucket, the last one +Inf; not cumulative
  double sum_seconds = 0;
  uint64_t total = 0;
};

class HcallStats {
 public:
  void Record(Hcall call, papr::Rc rc, std::chrono::nanoseconds took);

  struct Snapshot {
    std::map<std::pair<Hcall, papr::Rc>, uint64_t> calls;
    std::map<Hcall, LatencyHistogram> latency;
  };
  Snapshot Read() const;

 private:
  mutable Mutex mu_;
  Snapshot snapshot_ GUARDED_BY(mu_);
};

}  // namespace cmm::hv
