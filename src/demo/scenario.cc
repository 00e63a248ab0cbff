#include "demo/scenario.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/size_text.h"

namespace cmm::demo {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr double kVmShare = 0.5;   // a VM's workloads against a partition's
constexpr double kOverload = 1.9;  // --overload: 77% of the pool becomes 146%

// A size that is a whole number of MiB (at least one), as text.
std::string Size(double bytes) {
  const uint64_t mib = std::max<uint64_t>(1, static_cast<uint64_t>(bytes) / kMiB);
  return fmt::format("{}M", mib);
}

}  // namespace

std::string CheckScenario(const ScenarioOptions& o) {
  if (o.partitions < 1 || o.partitions > 16) return "--partitions must be 1-16";
  if (o.overcommit < 1.0 || o.overcommit > 16.0) return "--overcommit must be between 1 and 16";
  if (o.duration_s < 5) return "--duration must be at least 5 seconds";
  const double ram = static_cast<double>(o.pool_bytes) * o.overcommit / o.partitions;
  if (o.vms < 0 || o.vms > o.partitions) return "there cannot be more VMs than members";
  if (o.vms > 0 && ram < 128.0 * kMiB) {
    return fmt::format("each VM would get {} MiB; give a larger --pool (128 MiB a VM at least)",
                       static_cast<uint64_t>(ram / kMiB));
  }
  if (ram < 64.0 * kMiB) {
    return fmt::format("each partition would get {} MiB; give a larger --pool or fewer --partitions (64 MiB at least)",
                       static_cast<uint64_t>(ram / kMiB));
  }
  return "";
}

Scenario BuildScenario(const ScenarioOptions& o) {
  Scenario s;
  s.pool_bytes = o.pool_bytes;
  const double pool = static_cast<double>(o.pool_bytes);
  const uint64_t ram = static_cast<uint64_t>(pool * o.overcommit / o.partitions) / (4 * kMiB) * (4 * kMiB);
  const double r = static_cast<double>(ram);
  const double d = o.duration_s;
  // Sizes are shares of the pool, for four partitions (fewer share more
  // each, no more than 80% of their RAM). At their peaks the workloads hold
  // about 77% of the pool; the caches take what is left and give it back.
  // Memory touched and then freed (bursts, batch jobs) and the caches
  // would, without a balloon, have the host back nearly all of the RAM.
  // A VM's cache cannot be dropped and its kernel takes about 30 MiB of
  // its own, so its workloads are smaller: at their peaks three VMs hold
  // about 78% of the pool with their kernels.
  const double scale = 4.0 / std::max(4, o.partitions) * (o.overload ? kOverload : 1.0);
  bool vm = false;
  auto of_pool = [&](double share) { return std::min(0.8 * r, share * pool * scale * (vm ? kVmShare : 1.0)); };
  static const char* kRoles[] = {"web", "db", "batch", "idle"};
  // Real guests' page caches keep growing toward all of their RAM, reading
  // `share` of it over `over` of the run. A VM's cache lives in tmpfs and
  // cannot be dropped, so VMs keep the small fixed caches.
  auto growing_cache = [&](double share, double over) {
    return "cache:" + Size(share * r) + ":" + Size(share * r / (over * d));
  };
  for (int i = 0; i < o.partitions; ++i) {
    PartitionPlan p;
    const std::string role = kRoles[i % 4];
    p.name = fmt::format("{}{}", role, i / 4 + 1);
    p.ram_bytes = ram;
    p.vm = i < o.vms;
    vm = p.vm;
    nlohmann::json phases = nlohmann::json::array();
    auto at = [&](double when, double bytes) { phases.push_back({{"at", when * d}, {"size", Size(bytes)}}); };
    if (role == "web") {
      p.role = "bursty web server";
      at(0, of_pool(0.03));  // quiet, a burst, quiet, a bigger burst; twice
      at(0.1, of_pool(0.2));
      at(0.2, of_pool(0.03));
      at(0.3, of_pool(0.3));
      at(0.4, of_pool(0.03));
      p.phases_json = nlohmann::json{{"kind", "movable"}, {"rate", Size(of_pool(0.3) / (0.05 * d))},
                                     {"repeat_after", d / 2}, {"phases", phases}}.dump();
      p.workloads = {"phases:" + p.name + ".json", p.vm ? "cache:" + Size(of_pool(0.1)) : growing_cache(0.85, 0.6)};
    } else if (role == "db") {
      p.role = "database, steady cache";
      p.workloads = {"hog:" + Size(of_pool(0.15)), p.vm ? "cache:" + Size(of_pool(0.25)) : growing_cache(0.85, 0.5)};
    } else if (role == "batch") {
      p.role = "nightly batch job";
      at(0, of_pool(0.02));  // grows over a fifth of the run, holds, shrinks
      at(0.25, of_pool(0.3));
      at(0.7, of_pool(0.02));
      p.phases_json = nlohmann::json{{"kind", "movable"}, {"rate", Size(of_pool(0.3) / (0.2 * d))},
                                     {"phases", phases}}.dump();
      p.workloads = {"phases:" + p.name + ".json"};
      if (!p.vm) p.workloads.push_back(growing_cache(0.6, 0.8));  // the job's output
    } else {
      p.role = "idle";
      p.workloads = {"hog:" + Size(of_pool(0.02))};
      if (!p.vm) p.workloads.push_back(growing_cache(0.5, 1.0));  // logs
    }
    s.partitions.push_back(std::move(p));
  }
  return s;
}

uint64_t PeakBytes(const PartitionPlan& p) {
  uint64_t sum = p.vm ? kVmKernelBytes : 0;
  for (const std::string& w : p.workloads) {
    const size_t colon = w.find(':');
    const std::string kind = w.substr(0, colon);
    if (kind == "phases") {
      const auto j = nlohmann::json::parse(p.phases_json, nullptr, false);
      uint64_t top = 0;
      const auto phases = j.is_object() ? j.find("phases") : j.end();
      if (phases != j.end() && phases->is_array()) {
        for (const auto& phase : *phases) {
          const auto size = phase.is_object() ? phase.find("size") : phase.end();
          if (size != phase.end() && size->is_string()) {
            top = std::max(top, ParseSize(size->get<std::string>()).value_or(0));
          }
        }
      }
      sum += top;
    } else if (kind == "hog" || (kind == "cache" && p.vm)) {
      const size_t end = w.find(':', colon + 1);
      sum += ParseSize(w.substr(colon + 1, end == std::string::npos ? end : end - colon - 1)).value_or(0);
    }
  }
  return sum;
}

}  // namespace cmm::demo
