// A libvirt domain's memory as its guest reports it (virDomainMemoryStats),
// decoded once into typed values. The numbers come from the guest's
// virtio_balloon driver through QEMU: on the guest's side of the trust
// boundary, so each is clamped to what the domain's RAM makes possible.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>

namespace cmm::hv {

struct DomainMemory {
  uint64_t actual_bytes = 0;  // guest memory now (RAM less the balloon)
  std::optional<uint64_t> usable_bytes, unused_bytes, available_bytes, disk_caches_bytes;
  std::optional<uint64_t> major_faults, swap_in_bytes;
  int64_t last_update = 0;  // seconds since the epoch; 0: no guest stats yet
};

// From libvirt's (tag, value) pairs, with `ram_bytes` the domain's RAM.
// Sizes in KiB become bytes, within the RAM; unknown tags are ignored; a
// missing balloon "actual" reads as all of the RAM.
DomainMemory DecodeDomainMemory(std::span<const std::pair<int, uint64_t>> stats, uint64_t ram_bytes);

}  // namespace cmm::hv
