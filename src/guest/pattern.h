// The data pattern every workload page carries: derived from the page's
// handle and a generation number, so a page that was copied wrong, moved
// under the wrong handle, left stale or overwritten is caught when checked.
#pragma once

#include <cstdint>
#include <span>

namespace cmm::guest {

void FillPattern(std::span<uint8_t> page, uint64_t handle, uint64_t generation);
// True if `page` holds exactly what FillPattern wrote for (handle, generation).
bool CheckPattern(std::span<const uint8_t> page, uint64_t handle, uint64_t generation);

}  // namespace cmm::guest
