// The kernel's text rules for sysfs and module parameter files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace cmm::ktext {

// kstrtoull/kstrtoul/kstrtouint with base 0: optional '+', then decimal,
// 0x hex or leading-0 octal digits, then at most one '\n'. Digits beyond
// 64 bits, or a value above `max`, are ERANGE; anything else, or no
// digits, is EINVAL. The text ends at a NUL, as a C string does. The error
// is a positive errno.
tl::expected<uint64_t, int> ParseUnsigned(std::string_view text, uint64_t max);

// simple_strtoul(text, NULL, 10): the base-10 digits at the start, no
// digits gives 0, the rest is ignored; wraps modulo 2^64 like the kernel.
uint64_t SimpleStrtoul10(std::string_view text);

// The `disable` parameter's text (S8): simple_strtoul, truncated to a
// 32-bit int; anything but 0 or 1 is EINVAL.
tl::expected<bool, int> ParseDisable(std::string_view text);

// "%lu\n", "%lx\n", "Y\n"/"N\n".
std::string Decimal(uint64_t v);
std::string Hex(uint64_t v);
std::string YesNo(bool v);

}  // namespace cmm::ktext
