// What a workload does, as `--workload` specs say it: "hog:SIZE[:RATE]",
// "unmovable:SIZE[:RATE]", "cache:SIZE[:RATE]", "phases:FILE" (JSON).
// Parsing and the phases timeline only: shared by `cmm guest` and the
// workload program that runs inside a QEMU guest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "guest/page_kind.h"

namespace cmm::guest {

enum class WorkloadKind : uint8_t { kHog, kUnmovable, kCache, kPhases };

struct Phase {
  double at_s = 0;     // seconds after the workload starts
  uint64_t bytes = 0;  // what it holds from then on
};

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::kHog;
  uint64_t bytes = 0;  // hog/unmovable: what to hold; cache: the source's size
  uint64_t rate = 0;   // bytes per second; 0: as fast as it can
  // phases: the timeline, sorted; after `repeat_after_s` (if > 0) it starts over.
  std::vector<Phase> phases;
  double repeat_after_s = 0;
  PageKind page_kind = PageKind::kMovable;
  std::string text;  // as the user wrote it
};

// "hog:SIZE[:RATE]", "unmovable:SIZE[:RATE]", "cache:SIZE[:RATE]",
// "phases:FILE" (JSON). RATE is a size per second, e.g. 64M or 64M/s.
tl::expected<WorkloadSpec, std::string> ParseWorkload(std::string_view text);
// The JSON timeline: {"kind": "movable"|"unmovable", "repeat_after": SECONDS,
//   "rate": SIZE, "phases": [{"at": SECONDS, "size": SIZE}, ...]}
tl::expected<WorkloadSpec, std::string> ParsePhases(std::string_view json, std::string text);

// What a workload holds `seconds` after it started, in bytes.
uint64_t TargetBytes(const WorkloadSpec& spec, double seconds);

}  // namespace cmm::guest
