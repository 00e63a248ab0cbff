#include "guest/pattern.h"

#include <cstring>

namespace cmm::guest {

namespace {

// splitmix64's finalizer: distinct (handle, generation) pairs give
// unrelated seeds.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Seed(uint64_t handle, uint64_t generation) { return Mix(handle * 0x9e3779b97f4a7c15ULL ^ Mix(generation)); }

// Word i of a page: cheap to compute, different at every offset.
constexpr uint64_t kStride = 0xd1b54a32d192ed03ULL;

}  // namespace

void FillPattern(std::span<uint8_t> page, uint64_t handle, uint64_t generation) {
  const uint64_t seed = Seed(handle, generation);
  const size_t words = page.size() / sizeof(uint64_t);
  for (size_t i = 0; i < words; ++i) {
    const uint64_t w = seed ^ (i * kStride);
    std::memcpy(page.data() + i * sizeof w, &w, sizeof w);
  }
}

bool CheckPattern(std::span<const uint8_t> page, uint64_t handle, uint64_t generation) {
  const uint64_t seed = Seed(handle, generation);
  const size_t words = page.size() / sizeof(uint64_t);
  uint64_t diff = 0;
  for (size_t i = 0; i < words; ++i) {
    uint64_t w;
    std::memcpy(&w, page.data() + i * sizeof w, sizeof w);
    diff |= w ^ (seed ^ (i * kStride));
  }
  return diff == 0;
}

}  // namespace cmm::guest
