// The guest's page allocator over guest RAM: memory blocks in zones, pages
// handed out to the rest of the guest through handles, the balloon's pages,
// and the steps of hot-remove (isolate, migrate, offline). It implements
// the controller's GuestMemory port.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "core/bitmap.h"
#include "core/error.h"
#include "core/mutex.h"
#include "core/ports.h"
#include "guest/page_kind.h"

namespace cmm::guest {

class KernelServices;

// Movable pages are reached only through their handle, so the system may
// move them; unmovable pages stay where they are (and only come from Zone
// Normal, as in Linux, so Movable blocks stay removable).

// What a page frame holds.
enum class FrameState : uint8_t { kOffline, kFree, kMovable, kUnmovable, kBalloon };

// Isolated: being hot-removed; its free pages are out of the free lists.
enum class BlockState : uint8_t { kOffline, kOnline, kIsolated };

// A reference to an allocated page: slot index in the low 32 bits, the
// slot's reuse count above, so a handle used after its free is detected.
struct Handle {
  uint64_t value = 0;
  friend bool operator==(Handle, Handle) = default;
};

struct FrameCounts {
  uint64_t free = 0;  // allocatable now
  uint64_t isolated_free = 0;
  uint64_t movable = 0;
  uint64_t unmovable = 0;
  uint64_t balloon = 0;
  uint64_t offline = 0;
};

class PageAllocator final : public GuestMemory {
 public:
  // Pages the balloon's light reclaim asks the shrinkers for at once.
  static constexpr uint64_t kReclaimBatch = 32;
  // Reclaim passes an ordinary allocation makes before the OOM chain.
  static constexpr int kReclaimPasses = 8;

  // Guest RAM at `ram` holds `blocks` memory blocks of `pages_per_block`
  // pages. The first `boot_blocks` start online in Zone Normal; the others
  // are offline until OnlineBlock() brings them in. `kernel` (may be null)
  // provides the shrinkers and the OOM notifier chain.
  PageAllocator(PageGeometry geometry, uint8_t* ram, uint64_t pages_per_block, uint64_t blocks, uint64_t boot_blocks,
                KernelServices* kernel = nullptr);

  // ---- Pages for the rest of the guest ----
  // No reclaim: lowest free page of the preferred zone, or none.
  std::optional<Handle> TryAlloc(PageKind kind);
  // When memory is short, runs the reclaim path: the shrinkers (a batch a
  // pass, while they free something), then the OOM notifier chain, then
  // one retry. If that fails too an OOM event is recorded and the error
  // (kNoMemory) says what was tried.
  Result<Handle> Alloc(PageKind kind);
  // False (and an integrity error) for a stale handle.
  bool Free(Handle h);
  // Runs f(page bytes, generation&) with the page pinned: it cannot move
  // while f runs. f must not call back into the allocator. False for a
  // stale handle.
  template <class F>
  bool Access(Handle h, F&& f) {
    MutexLock lock(mu_);
    Slot* s = SlotLocked(h);
    if (s == nullptr) {
      NoteErrorLocked("page access through a stale handle");
      return false;
    }
    f(PageBytes(s->pfn), s->generation);
    return true;
  }
  std::optional<Pfn> Locate(Handle h) const;

  // Data found wrong anywhere in the guest; counted and logged.
  void ReportIntegrityError(std::string_view what);
  uint64_t integrity_errors() const { return integrity_errors_.load(); }
  std::string last_integrity_error() const;
  uint64_t oom_events() const { return oom_events_.load(); }
  // Allocations that went on only because an OOM notifier (the balloon's
  // OOM give-back) freed memory for them.
  uint64_t oom_give_backs() const { return oom_give_backs_.load(); }
  // Pages the shrinkers freed for allocations that found no free page
  // (direct reclaim; not the balloon's own light reclaim).
  uint64_t direct_reclaimed() const { return direct_reclaimed_.load(); }

  // ---- GuestMemory (the balloon) ----
  PageGeometry Geometry() const override { return geometry_; }
  uint64_t PageSpan() const override { return span_; }
  std::optional<Pfn> AllocBalloonPage() override;
  void FreePage(Pfn page) override;
  void AdjustTotalram(Pfn page, Pages delta) override;
  Pages Totalram() const override;
  Zone ZoneOf(Pfn page) const override;

  uint64_t FreePages() const;
  Pages ZoneTotal(Zone z) const { return Pages(managed_[static_cast<int>(z)].load()); }
  FrameCounts Counts() const;
  // The same, for one block's pages.
  FrameCounts BlockCounts(uint64_t block) const;
  FrameState StateOf(Pfn page) const;

  // ---- Memory blocks and hot-remove ----
  uint64_t pages_per_block() const { return pages_per_block_; }
  uint64_t blocks() const { return blocks_; }
  BlockState block_state(uint64_t block) const;
  Zone ZoneOfBlock(uint64_t block) const { return static_cast<Zone>(zones_[block].load()); }
  // Offline → online in Zone Movable (hot-add) with all pages free. False if
  // the block is not offline. Boot blocks are onlined in Zone Normal.
  bool OnlineBlock(uint64_t block);
  // Online → isolated: no new allocation comes from it. False if not online.
  bool IsolateBlock(uint64_t block);
  // Isolated → online again (a cancelled removal).
  void UnisolateBlock(uint64_t block);
  struct BlockUse {
    std::vector<Pfn> movable, unmovable, balloon;
  };
  BlockUse UsedIn(uint64_t block) const;
  enum class MigrateResult : uint8_t { kMoved, kGone, kNoMemory };
  // Copies a movable page to a free page outside isolated blocks and
  // re-points its handle; checks its pattern on arrival. kGone: the page is
  // no longer movable (freed meanwhile).
  MigrateResult MigrateMovable(Pfn page);
  // A free page outside isolated blocks, taken as a balloon page: the new
  // home of a balloon page being migrated (S13).
  std::optional<Pfn> AllocMigrationTarget();
  // Isolated block whose pages are all free → offline; its zone's usable
  // total drops by the block. False (nothing changed) if a page is in use.
  bool OfflineIsolated(uint64_t block);

  // Every frame in exactly one place and the totals adding up; says what
  // is wrong otherwise.
  tl::expected<void, std::string> CheckInvariants() const;

 private:
  struct Slot {
    uint64_t pfn = 0;
    uint64_t generation = 0;  // of the data pattern; 0: no pattern yet
    uint32_t serial = 0;
    bool live = false;
  };
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  std::span<uint8_t> PageBytes(uint64_t pfn) const {
    return {ram_ + pfn * geometry_.size(), static_cast<size_t>(geometry_.size())};
  }
  uint64_t BlockOf(uint64_t pfn) const { return pfn / pages_per_block_; }
  // All below need mu_.
  Slot* SlotLocked(Handle h) REQUIRES(mu_);
  const Slot* SlotLocked(Handle h) const REQUIRES(mu_);
  std::optional<uint64_t> TakeFreeLocked(PageKind kind, FrameState as) REQUIRES(mu_);
  void OnlineLocked(uint64_t block, Zone zone) REQUIRES(mu_);
  void ReleaseFrameLocked(uint64_t pfn) REQUIRES(mu_);
  void NoteErrorLocked(std::string_view what) REQUIRES(mu_);
  FrameCounts CountLocked(uint64_t first, uint64_t count) const REQUIRES(mu_);

  const PageGeometry geometry_;
  uint8_t* const ram_;
  const uint64_t pages_per_block_;
  const uint64_t blocks_;
  const uint64_t boot_blocks_;
  const uint64_t span_;
  KernelServices* const kernel_;
  // A block's zone, read lock-free by ZoneOf (set only while it is offline).
  std::unique_ptr<std::atomic<uint8_t>[]> zones_;
  std::atomic<int64_t> managed_[2] = {0, 0};
  std::atomic<uint64_t> integrity_errors_{0};
  std::atomic<uint64_t> oom_events_{0};
  std::atomic<uint64_t> oom_give_backs_{0};
  std::atomic<uint64_t> direct_reclaimed_{0};

  mutable Mutex mu_;  // guards everything below
  std::vector<FrameState> frames_ GUARDED_BY(mu_);
  std::vector<uint32_t> owner_ GUARDED_BY(mu_);  // slot of a movable/unmovable frame
  std::vector<BlockState> block_states_ GUARDED_BY(mu_);
  PageBitmap free_[2] GUARDED_BY(mu_);  // allocatable free pages per zone
  std::vector<Slot> slots_ GUARDED_BY(mu_);
  std::vector<uint32_t> free_slots_ GUARDED_BY(mu_);
  std::string last_error_ GUARDED_BY(mu_);
};

}  // namespace cmm::guest
