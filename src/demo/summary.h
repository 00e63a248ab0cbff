// What the demo saw, second by second, and what it adds up to at the end:
// the overcommit achieved, the pool's use against its size, OOM events,
// integrity errors, pages loaned and returned, host memory saved. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cmm::demo {

struct PartitionSample {
  std::string name;
  uint64_t ram_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t cache_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t target_loaned_bytes = 0;
  uint64_t backing_bytes = 0;  // st_blocks of its memfd, from the hypervisor
  uint64_t rss_shmem_bytes = 0;  // RssShmem of its process, from /proc
  uint64_t oom_events = 0;
  uint64_t pages_loaned = 0;     // CMO pages, cumulative
  uint64_t pages_returned = 0;
};

struct Sample {
  double t_s = 0;
  uint64_t pool_bytes = 0;
  std::vector<PartitionSample> partitions;
  uint64_t backing() const;
  uint64_t ram() const;
  uint64_t loaned() const;
  // What the host does not back now, against backing every partition's
  // whole RAM: RAM - backing.
  uint64_t saved() const;
};

struct Summary {
  double seconds = 0;
  uint64_t pool_bytes = 0;
  uint64_t ram_bytes = 0;
  double overcommit = 0;  // RAM / pool
  uint64_t peak_backing = 0;
  uint64_t mean_backing = 0;
  double seconds_over_pool = 0;  // the policy's own
  // Over while memory a partition took back on its own (OOM give-back) was
  // being recovered from the others: counted apart.
  double seconds_over_after_oom = 0;
  // What the members used (not what the host backed) above the pool: no
  // policy could have fed them all then.
  double seconds_demand_over_pool = 0;
  uint64_t peak_demand = 0;
  std::string peak_demand_said;  // at that peak, when above the pool ("members use ...")
  uint64_t peak_loaned = 0;
  uint64_t final_loaned = 0;
  uint64_t oom_events = 0;
  std::map<std::string, uint64_t> oom_events_by_member;  // those that met any
  uint64_t pages_loaned = 0;
  uint64_t pages_returned = 0;
  uint64_t peak_rss_shmem = 0;  // the same memory seen from /proc
  uint64_t integrity_errors = 0;
  int samples = 0;
};

class SummaryBuilder {
 public:
  // Samples come once per interval; the time between two is what counts
  // toward "over the pool" when the later one is over.
  void Add(const Sample& s);
  Summary Finish(uint64_t integrity_errors) const;

 private:
  Summary sum_;
  double backing_total_ = 0;
  double last_t_ = 0;
  double last_oom_t_ = -1e9;  // when a partition last counted an OOM event
};

// One line per figure, for the end of the run; `compare` (if the run was
// repeated with the balloon off) adds a column.
std::string FormatSummary(const Summary& s, const Summary* balloon_off);

// The live view: a table per partition and the pool line.
std::string FormatFrame(const Sample& s, double duration_s);
// The same as one line, for output that is not a terminal.
std::string FormatLine(const Sample& s);

}  // namespace cmm::demo
