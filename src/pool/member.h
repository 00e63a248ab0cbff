// A pool member: anything whose RAM the host backs and whose balloon can be
// given a target. The pool and its policy see only this; each kind of
// member (a cmm partition over hcalls, a QEMU VM over QMP) has an adapter
// that implements it. Neither wire types nor memfds appear here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/units.h"

namespace cmm::hv {

enum class MemberKind : uint8_t { kPartition, kVm, kDomain };
std::string_view KindName(MemberKind kind);  // "partition", "vm", "domain"

using MemberClock = std::chrono::steady_clock;

// What a member last said of its memory use, and when.
struct MemberStats {
  Bytes free_bytes;
  Bytes used_bytes;
  Bytes cache_bytes;
  uint64_t oom_events = 0;  // counted since it joined, never decreasing
  MemberClock::time_point taken{};  // the epoch: no stats yet
  // Its confirmed loan when they were taken: what it loaned since came out
  // of the memory they show idle (pool/idle_now.h).
  Bytes loaned_bytes;
  // Signs of memory pressure, where the guest gives them, counted since
  // it started (a count that falls has started over): memory it swapped
  // back in, its major page faults, and what its allocations had to
  // reclaim first (a partition's direct reclaim). Zero where it gives none.
  Bytes swapped_in;
  uint64_t major_faults = 0;
  Bytes reclaimed;
};

// The operator's terms for a member: from its joining, then `cmm hv set`.
struct MemberSettings {
  uint8_t weight = 0;      // PAPR mem_weight 0-255
  Bytes min_bytes;  // never asked to go below this much usable memory
  Bytes max_bytes;  // 0: the RAM size; it always loans what is above
};

// What the rebalancer gives a member each period.
struct Assignment {
  Bytes target_loaned_bytes;
  Bytes pool_bytes;
  uint8_t weight = 0;
};

// Per-partition hcall counters; zero for other kinds.
struct HcallCounts {
  uint64_t get_mpp = 0;
  uint64_t page_init = 0;        // CMO pages, single or batched
  uint64_t page_init_failed = 0;
  uint64_t batches = 0;
  uint64_t releases = 0;  // punch-hole calls (ranges)
  uint64_t pages_loaned = 0;    // CMO pages set loaned
  uint64_t pages_returned = 0;  // CMO pages set active
};

// A member's state, read at once.
struct MemberState {
  Bytes ram_bytes;
  Bytes backing_bytes;  // host memory behind its RAM now
  Bytes loaned_bytes;   // confirmed loaned (given up) now
  MemberStats stats;
  // False when the member does not follow its target or its stats stopped:
  // the policy then counts on nothing from it.
  bool responsive = true;
  std::string note;             // why it is not responsive, or ""
  std::string backing_source;   // how backing_bytes was measured: "memfd", "smaps"
  Bytes own_bytes;              // the process's memory outside guest RAM (QEMU's own)
  int pid = 0;                  // its process, when the hypervisor knows it
  HcallCounts counts;
  std::string uri;  // a libvirt domain's connection, or ""
};

class Member {
 public:
  virtual ~Member() = default;
  virtual const std::string& name() const = 0;
  virtual MemberKind kind() const = 0;
  virtual Bytes ram_bytes() const = 0;
  virtual MemberState Observe() const = 0;
  // Must not block: a partition answers it on its next H_GET_MPP, a VM's
  // adapter pushes it from its own thread.
  virtual void Assign(const Assignment& a) = 0;
};

}  // namespace cmm::hv
