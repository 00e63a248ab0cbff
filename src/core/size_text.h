// Sizes as people write and read them, in binary units.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/units.h"

namespace cmm {

// "1G", "512M", "64K", "4096" (bytes); binary units. Empty on bad text.
std::optional<uint64_t> ParseSize(const std::string& text);
// The same as a quantity of memory; empty past the signed range too.
std::optional<Bytes> ParseBytes(const std::string& text);
// "1 GiB", "1.5 GiB", "4 KiB", "512 B".
std::string FormatBytes(uint64_t bytes);
// The same for a signed quantity: "-1 MiB" below zero.
std::string FormatBytes(Bytes bytes);

}  // namespace cmm
