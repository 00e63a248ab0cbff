#include "sim/shape.h"

#include <algorithm>
#include <array>

namespace cmm::sim {

namespace {
constexpr std::array<std::string_view, 6> kNames = {"steady", "web", "batch", "idle", "leak", "samples"};
}  // namespace

std::string_view ShapeName(ShapeKind k) { return kNames.at(static_cast<size_t>(k)); }

std::optional<ShapeKind> ShapeByName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<ShapeKind>(i);
  }
  return std::nullopt;
}

Workload::Workload(Shape shape, uint64_t ram, uint64_t seed, const Samples* samples)
    : shape_(shape), ram_(ram), rng_(seed), phase_(0), samples_(samples) {
  phase_ = static_cast<uint32_t>(SplitMix64(rng_) % std::max<uint32_t>(shape_.every_s, 1));
  burst_start_ = phase_;
  burst_end_ = burst_start_ + shape_.length_s;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Want Workload::At(uint32_t t) {
  if (shape_.kind == ShapeKind::kSamples) {
    if (samples_ == nullptr || samples_->t_s.empty()) return {};
    while (at_ + 1 < samples_->t_s.size() && samples_->t_s[at_ + 1] <= t) ++at_;
    return {samples_->used[at_], samples_->cache[at_]};
  }
  const double ram = static_cast<double>(ram_);
  double used = shape_.base;
  // Caches keep growing toward their share; batch output and web content
  // land in them too.
  double cache = shape_.cache * std::min(1.0, static_cast<double>(t) / std::max<uint32_t>(shape_.cache_fill_s, 1));
  const uint32_t every = std::max<uint32_t>(shape_.every_s, 1);
  switch (shape_.kind) {
    case ShapeKind::kSteady:
    case ShapeKind::kIdle:
    case ShapeKind::kSamples:
      break;
    case ShapeKind::kWeb:
      // Bursts at random, about one per `every`.
      while (t >= burst_end_) {
        burst_start_ = burst_end_ + static_cast<uint32_t>(SplitMix64(rng_) % (2 * every));
        burst_end_ = burst_start_ + shape_.length_s;
      }
      if (t >= burst_start_) used = shape_.peak;
      break;
    case ShapeKind::kBatch:
      // A job once a cycle: memory touched, then freed when it ends.
      if ((t + every - phase_) % every < shape_.length_s) used = shape_.peak;
      break;
    case ShapeKind::kLeak: {
      const double grown = static_cast<double>((t + phase_) % every) / every;
      used = shape_.base + (shape_.peak - shape_.base) * grown;
      break;
    }
  }
  used = std::min(used, 1.0);
  cache = std::min(cache, 1.0 - used);
  return {static_cast<uint64_t>(used * ram), static_cast<uint64_t>(cache * ram)};
}

}  // namespace cmm::sim
