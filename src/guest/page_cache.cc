#include "guest/page_cache.h"

#include <fmt/format.h>

#include "guest/pattern.h"

namespace cmm::guest {

namespace {

// A cached page's contents follow from its handle and its source index;
// generation 0 means "no pattern" to the allocator, hence the + 1.
uint64_t Generation(uint64_t index) { return index + 1; }

}  // namespace

PageCache::PageCache(PageAllocator& memory, KernelServices& kernel) : memory_(memory), kernel_(kernel) {
  kernel_.RegisterShrinker(*this);
}

PageCache::~PageCache() {
  kernel_.UnregisterShrinker(*this);
  Clear();
}

Result<bool> PageCache::Read(uint64_t index) {
  {
    MutexLock lock(mu_);
    if (auto it = map_.find(index); it != map_.end()) {
      const Handle h = it->second->second;
      bool good = false;
      memory_.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
        good = generation == Generation(index) && CheckPattern(bytes, h.value, generation);
      });
      if (!good) memory_.ReportIntegrityError(fmt::format("page cache: page {} of the source reads back wrong", index));
      lru_.splice(lru_.begin(), lru_, it->second);
      hits_.fetch_add(1);
      return true;
    }
  }
  // Not under mu_: the reclaim path may call Shrink().
  auto page = memory_.Alloc(PageKind::kMovable);
  if (!page) return tl::unexpected(page.error());
  memory_.Access(*page, [&](std::span<uint8_t> bytes, uint64_t& generation) {
    generation = Generation(index);
    FillPattern(bytes, page->value, generation);
  });
  MutexLock lock(mu_);
  if (map_.contains(index)) {  // read in by another reader meanwhile
    memory_.Free(*page);
    hits_.fetch_add(1);
    return true;
  }
  lru_.emplace_front(index, *page);
  map_[index] = lru_.begin();
  misses_.fetch_add(1);
  return false;
}

void PageCache::DropLocked(Lru::iterator it) {
  const uint64_t index = it->first;
  const Handle h = it->second;
  bool good = false;
  memory_.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
    good = CheckPattern(bytes, h.value, generation);
  });
  if (!good) memory_.ReportIntegrityError(fmt::format("page cache: page {} of the source is wrong when dropped", index));
  memory_.Free(h);
  map_.erase(index);
  lru_.erase(it);
}

uint64_t PageCache::Shrink(uint64_t wanted) {
  MutexLock lock(mu_);
  uint64_t n = 0;
  for (; n < wanted && !lru_.empty(); ++n) DropLocked(std::prev(lru_.end()));
  reclaimed_.fetch_add(n);
  return n;
}

void PageCache::Clear() {
  MutexLock lock(mu_);
  while (!lru_.empty()) DropLocked(std::prev(lru_.end()));
}

uint64_t PageCache::pages() const {
  MutexLock lock(mu_);
  return lru_.size();
}

}  // namespace cmm::guest
