// What the pool did lately, for a page opened late and for `cmm hv watch`:
// the pool's use second by second over the last minutes (a bounded ring)
// and the events found between rounds (a member joined or left, an OOM
// event, a target reached, the pool over or infeasible). Pure: it is told
// the time and the members after each round.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "pool/pool.h"

namespace cmm::hv {

struct PoolSample {
  int64_t unix_ms = 0;
  uint64_t pool_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t ram_bytes = 0;
  uint32_t members = 0;
};

struct PoolEvent {
  uint64_t seq = 0;  // 1, 2, ...: a reader asks for those after the last it saw
  int64_t unix_ms = 0;
  std::string kind;    // joined, left, oom, reached, unresponsive, responsive, over, within, infeasible, feasible
  std::string member;  // "" for the pool's own events
  std::string text;    // one line a person reads
};

class PoolMonitor {
 public:
  // Samples older than `keep` are dropped; one sample per second at most
  // (a later one in the same second replaces it); at most `max_events`.
  explicit PoolMonitor(std::chrono::milliseconds keep = std::chrono::minutes(15), size_t max_events = 500);

  void Observe(int64_t unix_ms, Bytes pool_bytes, const Feasibility& feasibility,
               const std::vector<MemberView>& members);

  std::vector<PoolSample> SamplesSince(int64_t unix_ms) const;
  std::vector<PoolEvent> EventsAfter(uint64_t seq) const;

 private:
  struct Seen {
    uint64_t oom_events = 0;
    bool responsive = true;
    bool reached = false;
  };
  void Note(int64_t unix_ms, std::string kind, std::string member, std::string text) REQUIRES(mu_);

  const int64_t keep_ms_;
  const size_t max_events_;
  mutable Mutex mu_;  // guards what follows
  std::deque<PoolSample> samples_ GUARDED_BY(mu_);
  std::deque<PoolEvent> events_ GUARDED_BY(mu_);
  uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  std::map<std::string, Seen> seen_ GUARDED_BY(mu_);
  bool observed_ GUARDED_BY(mu_) = false;
  bool over_ GUARDED_BY(mu_) = false;
  bool infeasible_ GUARDED_BY(mu_) = false;
};

}  // namespace cmm::hv
