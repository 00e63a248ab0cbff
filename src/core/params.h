// The driver's module parameters (SPEC S1) with their defaults.
#pragma once

#include <atomic>
#include <cstdint>

namespace cmm {

// Plain values: what a partition is started with.
struct ParamValues {
  uint32_t delay = 1;            // s between polls
  uint32_t hotplug_delay = 5;    // s of pause after a hot-remove
  uint32_t oom_kb = 1024;        // kB given back per OOM notification
  uint64_t min_mem_mb = 256;     // MB never ballooned
  uint32_t debug = 0;            // "cmm: " debug lines when non-zero
  bool simulate = false;         // fixed at start
  uint32_t disable = 0;          // S8
  uint64_t simulate_loan_target_kb = 0;
};

// Live values, read by the poll thread while the control endpoint writes.
struct Params {
  explicit Params(const ParamValues& v)
      : delay(v.delay), hotplug_delay(v.hotplug_delay), oom_kb(v.oom_kb),
        min_mem_mb(v.min_mem_mb), debug(v.debug), simulate(v.simulate),
        simulate_loan_target_kb(v.simulate_loan_target_kb) {}

  std::atomic<uint32_t> delay;
  std::atomic<uint32_t> hotplug_delay;
  std::atomic<uint32_t> oom_kb;
  std::atomic<uint64_t> min_mem_mb;
  std::atomic<uint32_t> debug;
  const bool simulate;
  std::atomic<uint64_t> simulate_loan_target_kb;
};

}  // namespace cmm

#include <string_view>

namespace cmm {

// A parameter given at start (`cmm guest --param key=value`), parsed with
// the rules of its file (S1; `disable` as S8; `simulate` as a kernel bool:
// 1/y/Y/on or 0/n/N/off). Returns 0 or EINVAL/ENOENT.
int SetParamAtStart(ParamValues& values, std::string_view key, std::string_view text);

}  // namespace cmm
