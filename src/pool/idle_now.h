// A member's idle memory now. Its stats arrive less often than the pool's
// rounds (a partition's with each H_GET_MPP, every `delay` seconds; a VM's
// each stats period), while its loan is counted as it moves. What it
// loaned since its stats were read came out of the memory they show idle,
// free first, then cache; what it got back went to its free memory. Without
// this a round between two readings would ask again for idle memory already
// loaned, and take a member below its headroom. Pure.
#pragma once

#include "core/units.h"
#include "pool/member.h"

namespace cmm::hv {

struct IdleNow {
  Bytes free;
  Bytes cache;
};

// `loaned_since`: its confirmed loan now less its loan when the stats came
// (negative when it got memory back). Within 0 and its RAM.
IdleNow IdleSinceStats(const MemberStats& stats, Bytes loaned_since, Bytes ram);

}  // namespace cmm::hv
