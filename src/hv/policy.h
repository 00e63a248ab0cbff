// The pool policy: from each partition's configuration and last reported
// stats, how much each should loan. Pure: no clock, no I/O.
//
// The pool must back what the partitions may use: the sum of (RAM - loaned)
// is kept within the pool. When it is over, the excess is asked of the
// partitions in proportion to their idle memory (free + page cache) and to
// their inverse weight (256 - mem_weight), first from the taxed share of
// idle memory (an idle-memory tax, default 75%, as in Waldspurger's ESX
// balloon), then from the rest of it; never below a partition's min. When
// there is room, loaned memory is handed back, first to partitions that
// had OOM events or run low on free memory, then to the others, in
// proportion to their weight + 1. A frozen member is asked only what is
// above its max and given nothing back.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace cmm::hv {

struct PolicyInput {
  uint64_t ram_bytes = 0;
  uint64_t min_bytes = 0;  // never ask it to go below this much usable memory
  uint64_t max_bytes = 0;  // 0: the RAM size; it always loans what is above
  uint8_t weight = 0;
  uint64_t loaned_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t cache_bytes = 0;
  uint64_t new_oom_events = 0;  // since the last decision
  // Not following its target (no balloon driver, a stuck guest): none of
  // its memory counts as idle and none is handed back to it; only what is
  // above its max is still asked of it.
  bool frozen = false;
};

struct PolicyConfig {
  uint64_t pool_bytes = 0;
  double idle_tax = 0.75;
  double low_free = 0.05;  // below this share of RAM free, a partition needs memory
  uint64_t granule = 1 << 20;  // requests are whole multiples of this
};

// The loan_request for each partition, in bytes: positive loan more,
// negative may take back.
std::vector<int64_t> LoanRequests(const PolicyConfig& config, std::span<const PolicyInput> partitions);

}  // namespace cmm::hv
