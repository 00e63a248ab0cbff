#include "members/libvirt/domain_memory.h"

#include <libvirt/libvirt.h>

#include <algorithm>
#include <limits>

namespace cmm::hv {

DomainMemory DecodeDomainMemory(std::span<const std::pair<int, uint64_t>> stats, uint64_t ram_bytes) {
  // KiB from the guest to bytes, within the RAM; a count past 2^54 KiB
  // cannot be and reads as the RAM.
  auto bytes = [ram_bytes](uint64_t kib) {
    return kib > (std::numeric_limits<uint64_t>::max() >> 10) ? ram_bytes : std::min(kib << 10, ram_bytes);
  };
  DomainMemory m;
  m.actual_bytes = ram_bytes;
  for (const auto& [tag, value] : stats) {
    switch (tag) {
      case VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON: m.actual_bytes = bytes(value); break;
      case VIR_DOMAIN_MEMORY_STAT_USABLE: m.usable_bytes = bytes(value); break;
      case VIR_DOMAIN_MEMORY_STAT_UNUSED: m.unused_bytes = bytes(value); break;
      case VIR_DOMAIN_MEMORY_STAT_AVAILABLE: m.available_bytes = bytes(value); break;
      case VIR_DOMAIN_MEMORY_STAT_DISK_CACHES: m.disk_caches_bytes = bytes(value); break;
      case VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT: m.major_faults = value; break;
      case VIR_DOMAIN_MEMORY_STAT_SWAP_IN:
        m.swap_in_bytes = value > (std::numeric_limits<uint64_t>::max() >> 10) ? std::numeric_limits<uint64_t>::max()
                                                                                : value << 10;
        break;
      case VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE:
        m.last_update = static_cast<int64_t>(std::min<uint64_t>(value, std::numeric_limits<int64_t>::max()));
        break;
      default: break;
    }
  }
  return m;
}

}  // namespace cmm::hv
