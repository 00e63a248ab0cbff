#include "guest/allocator.h"

#include <algorithm>

namespace cmm::guest {

PageAllocator::PageAllocator(PageGeometry geometry, uint64_t span, uint64_t normal_pages)
    : geometry_(geometry), span_(span), normal_pages_(std::min(normal_pages, span)), free_(span) {
  for (uint64_t i = 0; i < span; ++i) free_.Set(i);
  managed_[static_cast<int>(Zone::kNormal)].store(static_cast<int64_t>(normal_pages_));
  managed_[static_cast<int>(Zone::kMovable)].store(static_cast<int64_t>(span - normal_pages_));
}

std::optional<Pfn> PageAllocator::Alloc() {
  std::lock_guard lock(mu_);
  const auto first = free_.FindFirst(0);
  if (!first) return std::nullopt;
  free_.Clear(*first);
  return Pfn{*first};
}

std::optional<Pfn> PageAllocator::AllocBalloonPage() {
  // The balloon's mode: no retry, no reserves, no OOM path. With no
  // shrinkers registered yet, light reclaim has nothing to give.
  return Alloc();
}

void PageAllocator::FreePage(Pfn page) {
  std::lock_guard lock(mu_);
  if (page.value >= span_ || !free_.Set(page.value)) integrity_errors_.fetch_add(1);
}

void PageAllocator::AdjustTotalram(Pfn page, Pages delta) {
  managed_[static_cast<int>(ZoneOf(page))].fetch_add(delta.value());
}

Pages PageAllocator::Totalram() const {
  return Pages(managed_[0].load() + managed_[1].load());
}

uint64_t PageAllocator::FreePages() const {
  std::lock_guard lock(mu_);
  return free_.count();
}

}  // namespace cmm::guest
