// Workloads that use a partition's memory the way applications do, and
// check every byte they own: hog (movable pages), unmovable, cache (reads
// through the page cache) and phases (a timeline of targets).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <tl/expected.hpp>

#include "core/ports.h"
#include "core/runner.h"
#include "guest/allocator.h"
#include "guest/page_cache.h"
#include "guest/workload_spec.h"

namespace cmm::guest {

struct WorkloadStats {
  std::string spec;
  uint64_t target_pages = 0;
  uint64_t held_pages = 0;
  uint64_t allocated = 0;
  uint64_t freed = 0;
  uint64_t touched = 0;
  uint64_t alloc_failures = 0;  // allocations that ended in an OOM event
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
};

class Workload {
 public:
  Workload(WorkloadSpec spec, PageAllocator& memory, PageCache& cache);
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Does what is due at `now`: allocate toward the target at the rate,
  // free down to a lower target, touch (check, then rewrite) some pages.
  void Step(TimePoint now);
  // Frees every page it holds, each checked first.
  void Release();
  WorkloadStats Stats() const;
  const WorkloadSpec& spec() const { return spec_; }

 private:
  uint64_t TargetPages(TimePoint now) const;
  bool AllocOne();
  void FreeOne();
  void Touch(Handle h);

  const WorkloadSpec spec_;
  PageAllocator& memory_;
  PageCache& cache_;
  const uint64_t page_size_;
  // Owned by the thread calling Step(); counters read by Stats().
  std::vector<Handle> pages_;
  size_t touch_cursor_ = 0;
  uint64_t cache_cursor_ = 0;
  bool started_ = false;
  TimePoint start_{};
  TimePoint last_{};
  TimePoint backoff_until_{};
  double credit_ = 0;  // pages the rate allows now
  std::atomic<uint64_t> target_{0}, held_{0}, allocated_{0}, freed_{0}, touched_{0}, failures_{0}, hits_{0}, misses_{0};
};

// Runs workloads on one thread, a step every few milliseconds.
// Steps every workload each period on a poll runner of its own, on the
// partition's clock: the same loop and the same Clock port as the balloon's.
class WorkloadRunner final : public Pollable {
 public:
  WorkloadRunner(std::vector<std::unique_ptr<Workload>> workloads, Clock& clock);
  ~WorkloadRunner() override;  // stops and releases every workload's pages
  std::vector<WorkloadStats> Stats() const;

  TimePoint Poll(TimePoint now) override;

 private:
  std::vector<std::unique_ptr<Workload>> workloads_;
  PollRunner runner_;
};

}  // namespace cmm::guest
