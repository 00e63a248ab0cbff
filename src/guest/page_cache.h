// A page cache: clean pages of a re-creatable source (a file's contents read
// in), kept while memory is free and given back under pressure as a shrinker.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

#include <tl/expected.hpp>

#include "core/error.h"

#include "core/mutex.h"
#include "guest/allocator.h"
#include "guest/kernel.h"

namespace cmm::guest {

class PageCache final : public Shrinker {
 public:
  // Registers itself with the kernel's shrinkers.
  PageCache(PageAllocator& memory, KernelServices& kernel);
  ~PageCache() override;
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // Reads page `index` of the source through the cache. A hit checks the
  // cached page; a miss allocates a movable page (the reclaim path may run)
  // and fills it. Returns whether it was a hit, or why the read failed.
  Result<bool> Read(uint64_t index);
  // Shrinker: drops the least recently read pages.
  uint64_t Shrink(uint64_t wanted) override;
  // Drops every page.
  void Clear();

  uint64_t pages() const;
  uint64_t hits() const { return hits_.load(); }
  uint64_t misses() const { return misses_.load(); }
  uint64_t reclaimed() const { return reclaimed_.load(); }

 private:
  using Lru = std::list<std::pair<uint64_t, Handle>>;  // (index, page), newest first
  void DropLocked(Lru::iterator it) REQUIRES(mu_);

  PageAllocator& memory_;
  KernelServices& kernel_;
  mutable Mutex mu_;  // guards lru_ and map_; taken before the allocator's lock, never after
  Lru lru_ GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Lru::iterator> map_ GUARDED_BY(mu_);
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> reclaimed_{0};
};

}  // namespace cmm::guest
