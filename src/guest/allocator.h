// The guest's page allocator over guest RAM, and its managed-page counts
// per zone. It implements the controller's GuestMemory port.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include <tl/expected.hpp>

#include "core/bitmap.h"
#include "core/ports.h"

namespace cmm::guest {

class KernelServices;

class PageAllocator final : public GuestMemory {
 public:
  // Guest RAM can hold `span` pages. The first `boot_pages` start online and
  // free in Zone Normal; the rest are offline until Online() brings them in
  // as Zone Movable (as Linux onlines hot-added memory). `kernel` (may be
  // null) provides the shrinkers and the OOM notifier chain.
  PageAllocator(PageGeometry geometry, uint64_t span, uint64_t boot_pages, KernelServices* kernel = nullptr);

  // Hot-add: pages [first, first + count) become free and usable.
  void Online(Pfn first, uint64_t count);

  // GuestMemory
  PageGeometry Geometry() const override { return geometry_; }
  uint64_t PageSpan() const override { return span_; }
  std::optional<Pfn> AllocBalloonPage() override;
  void FreePage(Pfn page) override;
  void AdjustTotalram(Pfn page, Pages delta) override;
  Pages Totalram() const override;
  Zone ZoneOf(Pfn page) const override { return page.value < normal_pages_ ? Zone::kNormal : Zone::kMovable; }

  // Lowest free page, or none; no reclaim.
  std::optional<Pfn> TryAlloc();
  // An ordinary allocation for the rest of the guest. When memory is short
  // it runs the reclaim path: the shrinkers, then (if they freed nothing
  // usable) the OOM notifier chain, then one retry. If that fails too an
  // OOM event is recorded and the error says what was tried.
  tl::expected<Pfn, std::string> Alloc();
  uint64_t oom_events() const { return oom_events_.load(); }
  uint64_t FreePages() const;
  Pages ZoneTotal(Zone z) const { return Pages(managed_[static_cast<int>(z)].load()); }
  // Frees of pages that were not allocated: each one is a bug somewhere.
  uint64_t integrity_errors() const { return integrity_errors_.load(); }

 private:
  const PageGeometry geometry_;
  const uint64_t span_;
  const uint64_t normal_pages_;
  mutable std::mutex mu_;  // guards free_
  PageBitmap free_;
  std::atomic<int64_t> managed_[2];
  std::atomic<uint64_t> integrity_errors_{0};
  std::atomic<uint64_t> oom_events_{0};
  KernelServices* kernel_;
};

}  // namespace cmm::guest
