// The memory a simulated member's workload wants over time: the built-in
// shapes of a fleet (steady, bursty web, batch jobs, idle, leaks) or
// samples recorded from a real run. Pure: time is a number of seconds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cmm::sim {

enum class ShapeKind : uint8_t { kSteady, kWeb, kBatch, kIdle, kLeak, kSamples };
constexpr size_t kShapeKinds = 6;
std::string_view ShapeName(ShapeKind k);
std::optional<ShapeKind> ShapeByName(std::string_view name);

// splitmix64: the next of a sequence of well-mixed numbers from `state`.
// The fleet generator and each workload draw from it.
uint64_t SplitMix64(uint64_t& state);

// Shares are of the member's RAM.
struct Shape {
  ShapeKind kind = ShapeKind::kSteady;
  float base = 0.3F;        // used at rest
  float peak = 0.6F;        // used in a burst, a job, or at a leak's top
  float cache = 0.3F;       // what the page cache grows to
  uint32_t every_s = 600;   // mean time between bursts; a job's or a leak's cycle
  uint32_t length_s = 120;  // a burst's or a job's length
  uint32_t cache_fill_s = 1800;  // time for the cache to grow to its share
};

// Recorded use: at t_s[i] and until the next sample, used and cache bytes.
struct Samples {
  std::vector<uint32_t> t_s;
  std::vector<uint64_t> used;
  std::vector<uint64_t> cache;
};

struct Want {
  uint64_t used = 0;   // anonymous memory: must be backed
  uint64_t cache = 0;  // page cache: grows into free memory, reclaimable
};

// One member's workload, stepped forward in time (never backward).
class Workload {
 public:
  Workload(Shape shape, uint64_t ram, uint64_t seed, const Samples* samples = nullptr);
  Want At(uint32_t t_s);

 private:
  Shape shape_;
  uint64_t ram_;
  uint64_t rng_;
  uint32_t phase_;
  uint32_t burst_start_ = 0;
  uint32_t burst_end_ = 0;
  const Samples* samples_;
  size_t at_ = 0;
};

}  // namespace cmm::sim
