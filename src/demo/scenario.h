// The demo's story as data: a pool, partitions given N times its size, and
// a workload timeline for each (a bursty web server, a database with a
// steady cache, a nightly batch job that grows and shrinks, an idle one),
// scaled to the pool and the run's duration. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cmm::demo {

struct ScenarioOptions {
  uint64_t pool_bytes = uint64_t{1} << 30;
  int partitions = 4;
  double overcommit = 3.0;  // sum of the partitions' RAM / pool
  double duration_s = 60;
  int vms = 0;  // the first this many members are QEMU VMs, the rest partitions
  // The workloads' peaks together above the pool (about 120% of it, 77%
  // without): demand no policy can meet, to see it said.
  bool overload = false;
};

struct PartitionPlan {
  std::string name;   // web1, db1, batch1, idle1, web2, ...
  std::string role;   // "bursty web server", ...
  uint64_t ram_bytes = 0;
  std::vector<std::string> workloads;  // `cmm guest --workload` specs; "phases:" ones name a file below
  std::string phases_json;              // the timeline, written to <name>.json when not empty
  bool vm = false;                      // a QEMU guest (`cmm vm run`), not a partition
};

struct Scenario {
  uint64_t pool_bytes = 0;
  std::vector<PartitionPlan> partitions;
};

// Refuses what cannot run: fewer than 1 or more than 16 partitions, an
// overcommit below 1, RAM per partition below 64 MiB (128 MiB for a VM,
// whose kernel needs some), more VMs than members, a duration below 5 s.
std::string CheckScenario(const ScenarioOptions& o);  // empty when fine
Scenario BuildScenario(const ScenarioOptions& o);

// What its workloads hold at their peak and cannot give up: the largest
// phase and the hogs; for a VM also its caches (tmpfs, not dropped) and its
// own kernel (kVmKernelBytes). A partition's page cache is dropped on demand.
constexpr uint64_t kVmKernelBytes = uint64_t{30} << 20;
uint64_t PeakBytes(const PartitionPlan& p);

}  // namespace cmm::demo
