// Sizes as people write and read them, in binary units.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace cmm {

// "1G", "512M", "64K", "4096" (bytes); binary units. Empty on bad text.
std::optional<uint64_t> ParseSize(const std::string& text);
// "1 GiB", "1.5 GiB", "4 KiB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace cmm
