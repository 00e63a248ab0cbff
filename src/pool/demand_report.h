// Demand beyond the pool, said in words: what the members use (their
// usable memory less what is free or cache: not only their floors) against
// the pool. When the members use more than the pool, no policy can keep
// them all fed; the operator is told by how much and by whom. Pure.
#pragma once

#include <string>
#include <vector>

#include "core/units.h"
#include "pool/member.h"

namespace cmm::hv {

// What a member of `ram` bytes with `loaned` confirmed uses by its stats;
// 0 when it has sent none yet.
Bytes MemberUse(Bytes ram, Bytes loaned, const MemberStats& stats);

struct NamedUse {
  std::string name;
  Bytes used;
};

// "members use 935 MiB, the pool is 768 MiB: 167 MiB short; web1 340 MiB,
// db1 339 MiB, batch1 256 MiB" (the five that use most, then "and N
// more"), or "" when their use fits the pool.
std::string DemandMessage(Bytes pool, std::vector<NamedUse> uses);

}  // namespace cmm::hv
