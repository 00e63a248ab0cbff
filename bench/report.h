// Every benchmark's headline figures, each with the raw limit measured in
// the same run and the ratio, appended as JSON lines to $CMM_BENCH_JSON
// when it is set; `cmm_bench_report` turns them into one table and one
// JSON document (`make bench`).
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace cmm::bench {

struct Figure {
  std::string bench;   // which benchmark
  std::string figure;  // what was measured
  std::string unit;
  double value = 0;
  double raw = 0;      // the raw OS limit, same unit, same run
  double ratio = 0;    // value against raw, oriented so that higher is better unless the goal says <=
  std::string goal;    // e.g. ">= 0.8" (on the ratio) or ">= 10 M/s"; empty: none
  bool met = true;
};

inline void Record(const Figure& f) {
  const char* path = std::getenv("CMM_BENCH_JSON");
  if (path == nullptr || *path == '\0') return;
  std::ofstream(path, std::ios::app) << nlohmann::json{{"bench", f.bench}, {"figure", f.figure}, {"unit", f.unit},
                                                       {"value", f.value}, {"raw", f.raw},     {"ratio", f.ratio},
                                                       {"goal", f.goal},   {"met", f.met}}
                                            .dump()
                                     << "\n";
}

}  // namespace cmm::bench
