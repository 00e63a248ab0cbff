// What a running partition says about itself ({"op":"status"}): one struct,
// serialised in one place (the end of this file), filled by the partition's
// control service and read back typed by the CLI, the demo and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "guest/workload.h"

// A workload's counters as the partition keeps them (beside the type, for
// the lookup by argument).
namespace cmm::guest {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(WorkloadStats, spec, target_pages, held_pages, allocated, freed, touched,
                                                alloc_failures, cache_hits, cache_misses)
}  // namespace cmm::guest

namespace cmm::ctl {

struct BlockStatus {
  uint64_t block = 0;
  std::string state;  // online, isolated, offline
  std::string zone;   // Normal, Movable
  uint64_t free = 0;
  uint64_t movable = 0;
  uint64_t unmovable = 0;
  uint64_t balloon = 0;
};

struct PartitionStatus {
  std::string name;
  int pid = 0;
  bool simulate = false;
  uint64_t page_size = 0;
  uint64_t cmo_page_size = 0;
  uint64_t ram_bytes = 0;
  uint64_t backing_bytes = 0;
  // The driver's counters, in pages (signed, as the kernel keeps them).
  int64_t totalram_pages = 0;
  int64_t loaned_pages = 0;
  int64_t loaned_target_pages = 0;
  int64_t oom_freed_pages = 0;
  uint64_t free_pages = 0;
  bool disabled = false;
  bool polling = false;
  uint32_t delay_s = 0;
  bool hotplug_in_progress = false;
  uint64_t integrity_errors = 0;
  std::string last_integrity_error;
  uint64_t movable_pages = 0;
  uint64_t unmovable_pages = 0;
  uint64_t balloon_pages = 0;
  uint64_t cache_pages = 0;
  std::vector<guest::WorkloadStats> workloads;
  std::vector<BlockStatus> blocks;
  uint64_t oom_events = 0;
  uint64_t oom_give_backs = 0;
  uint64_t block_bytes = 0;
  uint64_t blocks_online = 0;
  uint64_t blocks_total = 0;
  // From `cmm guest`, which restarts the partition in place: the boot
  // this is (1 at start), and what the last restart returned (-1: none).
  uint64_t boot = 1;
  int64_t restart_returned_pages = -1;

  // A page count in bytes (a negative count is none).
  uint64_t BytesOf(int64_t pages) const { return pages <= 0 ? 0 : static_cast<uint64_t>(pages) * page_size; }
};

// The serialisation: each field's name on the wire is its name above; a
// key missing from a reply (an older partition) reads as the default.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(BlockStatus, block, state, zone, free, movable, unmovable, balloon)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PartitionStatus, name, pid, simulate, page_size, cmo_page_size,
                                                ram_bytes, backing_bytes, totalram_pages, loaned_pages,
                                                loaned_target_pages, oom_freed_pages, free_pages, disabled, polling,
                                                delay_s, hotplug_in_progress, integrity_errors, last_integrity_error,
                                                movable_pages, unmovable_pages, balloon_pages, cache_pages, workloads,
                                                blocks, oom_events, oom_give_backs, block_bytes, blocks_online,
                                                blocks_total, boot, restart_returned_pages)

}  // namespace cmm::ctl
