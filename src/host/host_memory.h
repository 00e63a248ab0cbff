// The host's memory as `--pool auto` sizes the pool from it: MemAvailable
// and MemTotal from /proc/meminfo, and the "some" pressure of
// /proc/pressure/memory (PSI) when the kernel has it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/units.h"

namespace cmm::hv {

struct HostMemory {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
  std::optional<double> pressure_avg10;  // percent of time some task stalled on memory, last 10 s
};

// Parsing, pure: the text of /proc/meminfo and of /proc/pressure/memory.
Result<HostMemory> ParseMeminfo(std::string_view text);
std::optional<double> ParsePressureAvg10(std::string_view text);

// Reads both files; the pressure file may be missing (no PSI).
Result<HostMemory> ReadHostMemory(const std::string& meminfo = "/proc/meminfo",
                                  const std::string& pressure = "/proc/pressure/memory");

// The pool `--pool auto` gives: what is available now plus what the
// partitions already use (their backing is not available any more, but it
// is theirs), minus the reserve kept for the host. Under memory pressure
// (avg10 at or above 5%) it shrinks by twice the stall share, at most by half.
Bytes AutoPoolBytes(const HostMemory& host, Bytes partitions_backing, Bytes reserve);

}  // namespace cmm::hv
