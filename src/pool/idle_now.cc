#include "pool/idle_now.h"

#include <algorithm>

namespace cmm::hv {

IdleNow IdleSinceStats(const MemberStats& stats, Bytes loaned_since, Bytes ram) {
  Bytes free = std::max(stats.free_bytes, Bytes(0));
  Bytes cache = std::max(stats.cache_bytes, Bytes(0));
  if (loaned_since > Bytes(0)) {
    const Bytes from_free = std::min(free, loaned_since);
    free -= from_free;
    cache -= std::min(cache, loaned_since - from_free);
  } else {
    free -= loaned_since;  // got back: free
  }
  free = std::clamp(free, Bytes(0), ram);
  cache = std::clamp(cache, Bytes(0), ram - free);
  return {free, cache};
}

}  // namespace cmm::hv
