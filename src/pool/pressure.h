// The signs of memory pressure a member's guest gives (pool/member.h:
// swap-ins, major faults, direct reclaim), read as what its counters grew
// between two stats readings. They are counts from the guest: one that
// falls has started over (the guest restarted) and says nothing, nor does
// the first reading (what it counted before it joined). Pure.
#pragma once

#include <cstdint>

#include "core/units.h"
#include "pool/member.h"

namespace cmm::hv {

// What a member's counters were at its last reading.
struct PressureSeen {
  bool known = false;
  Bytes swapped_in;
  uint64_t major_faults = 0;
  Bytes reclaimed;
};

struct Pressure {
  // It swapped at least `step` back in: short of memory.
  bool swapping = false;
  // It reclaimed at least `step`, or faulted in as many pages of `page`
  // bytes from disk: its use met no free memory.
  bool reclaiming = false;
};

// At a new reading: the pressure since the last, and `seen` moves on.
Pressure ReadPressure(const MemberStats& now, PressureSeen& seen, Bytes step, Bytes page);

}  // namespace cmm::hv
