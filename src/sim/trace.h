// A fleet trace: the members of a pool, their terms and what their
// workloads want over time (a built-in shape or recorded samples), and the
// pool's size over time. JSON; the format is in the README ("Traces").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include "sim/sim_member.h"

namespace cmm::sim {

struct PoolChange {
  uint32_t at_s = 0;
  uint64_t pool_bytes = 0;
};

struct Trace {
  uint32_t period_s = 1;
  uint64_t pool_bytes = 0;  // 0: not given
  std::vector<PoolChange> pool_changes;
  std::vector<MemberSpec> members;
};

tl::expected<Trace, std::string> ParseTrace(const std::string& json_text);
std::string TraceJson(const Trace& trace);

// `members` members of the built-in shapes (bursty web, steady, batch,
// idle, leaks), sizes 512 MiB-8 GiB, mixed weights and balloon speeds; a
// few stall for a while and one in two hundred has no balloon driver.
// Every number comes from `seed`.
Trace GenerateFleet(uint32_t members, uint64_t seed);

}  // namespace cmm::sim
