#include "guest/allocator.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "guest/kernel.h"

namespace cmm::guest {

PageAllocator::PageAllocator(PageGeometry geometry, uint64_t span, uint64_t normal_pages, KernelServices* kernel)
    : geometry_(geometry), span_(span), normal_pages_(std::min(normal_pages, span)), free_(span), kernel_(kernel) {
  for (uint64_t i = 0; i < normal_pages_; ++i) free_.Set(i);
  managed_[static_cast<int>(Zone::kNormal)].store(static_cast<int64_t>(normal_pages_));
  managed_[static_cast<int>(Zone::kMovable)].store(0);
}

void PageAllocator::Online(Pfn first, uint64_t count) {
  {
    std::lock_guard lock(mu_);
    for (uint64_t i = first.value; i < first.value + count && i < span_; ++i) free_.Set(i);
  }
  managed_[static_cast<int>(ZoneOf(first))].fetch_add(static_cast<int64_t>(count));
}

std::optional<Pfn> PageAllocator::TryAlloc() {
  std::lock_guard lock(mu_);
  const auto first = free_.FindFirst(0);
  if (!first) return std::nullopt;
  free_.Clear(*first);
  return Pfn{*first};
}

std::optional<Pfn> PageAllocator::AllocBalloonPage() {
  // The balloon's mode (S4): light reclaim once, never the OOM path, no
  // retry beyond what that reclaim made possible.
  if (auto p = TryAlloc()) return p;
  if (kernel_ == nullptr || kernel_->RunShrinkers(1) == 0) return std::nullopt;
  return TryAlloc();
}

tl::expected<Pfn, std::string> PageAllocator::Alloc() {
  if (auto p = TryAlloc()) return *p;
  uint64_t shrunk = 0;
  int64_t oom_freed = 0;
  if (kernel_ != nullptr) {
    shrunk = kernel_->RunShrinkers(1);
    if (shrunk > 0) {
      if (auto p = TryAlloc()) return *p;
    }
    oom_freed = kernel_->NotifyOom().value();
    if (auto p = TryAlloc()) return *p;  // the one retry
  }
  oom_events_.fetch_add(1);
  const std::string what = fmt::format(
      "out of memory: 1 page of {} bytes wanted, {} free of {} total; shrinkers freed {}, OOM notifiers freed {}",
      geometry_.size(), FreePages(), Totalram().value(), shrunk, oom_freed);
  spdlog::warn("{}", what);
  return tl::unexpected(what);
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
