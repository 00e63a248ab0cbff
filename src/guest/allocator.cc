#include "guest/allocator.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "guest/kernel.h"
#include "guest/pattern.h"

namespace cmm::guest {

namespace {

constexpr int Z(Zone z) { return static_cast<int>(z); }

const char* KindName(PageKind k) { return k == PageKind::kMovable ? "movable" : "unmovable"; }

}  // namespace

PageAllocator::PageAllocator(PageGeometry geometry, uint8_t* ram, uint64_t pages_per_block, uint64_t blocks,
                             uint64_t boot_blocks, KernelServices* kernel)
    : geometry_(geometry),
      ram_(ram),
      pages_per_block_(pages_per_block),
      blocks_(blocks),
      boot_blocks_(std::min(boot_blocks, blocks)),
      span_(pages_per_block * blocks),
      kernel_(kernel),
      zones_(new std::atomic<uint8_t>[blocks]),
      frames_(span_, FrameState::kOffline),
      owner_(span_, kNoSlot),
      block_states_(blocks, BlockState::kOffline),
      free_{PageBitmap(span_), PageBitmap(span_)} {
  for (uint64_t b = 0; b < blocks_; ++b) zones_[b].store(static_cast<uint8_t>(Zone::kMovable));
  for (uint64_t b = 0; b < boot_blocks_; ++b) OnlineLocked(b, Zone::kNormal);
}

// ---- pages for the rest of the guest --------------------------------------

std::optional<uint64_t> PageAllocator::TakeFreeLocked(PageKind kind, FrameState as) {
  // Movable allocations prefer Zone Movable; unmovable ones may only use Normal.
  const Zone order[2] = {Zone::kMovable, Zone::kNormal};
  for (const Zone z : order) {
    if (kind == PageKind::kUnmovable && z == Zone::kMovable) continue;
    if (auto pfn = free_[Z(z)].FindFirst(0)) {
      free_[Z(z)].Clear(*pfn);
      frames_[*pfn] = as;
      return pfn;
    }
  }
  return std::nullopt;
}

std::optional<Handle> PageAllocator::TryAlloc(PageKind kind) {
  MutexLock lock(mu_);
  const auto pfn = TakeFreeLocked(kind, kind == PageKind::kMovable ? FrameState::kMovable : FrameState::kUnmovable);
  if (!pfn) return std::nullopt;
  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.pfn = *pfn;
  s.generation = 0;
  s.live = true;
  owner_[*pfn] = index;
  return Handle{(uint64_t{s.serial} << 32) | index};
}

Result<Handle> PageAllocator::Alloc(PageKind kind) {
  if (auto h = TryAlloc(kind)) return *h;
  uint64_t shrunk = 0;
  int64_t oom_freed = 0;
  if (kernel_ != nullptr) {
    // Reclaim while the shrinkers free something: other threads may take
    // what one pass freed before this one gets to it.
    for (int pass = 0; pass < kReclaimPasses; ++pass) {
      const uint64_t freed = kernel_->RunShrinkers(kReclaimBatch);
      shrunk += freed;
      direct_reclaimed_.fetch_add(freed);
      if (freed == 0) break;
      if (auto h = TryAlloc(kind)) return *h;
    }
    oom_freed = kernel_->NotifyOom().value();
    if (oom_freed > 0) oom_give_backs_.fetch_add(1);
    if (auto h = TryAlloc(kind)) return *h;  // the one retry
  }
  oom_events_.fetch_add(1);
  const std::string what = fmt::format(
      "out of memory: 1 {} page of {} bytes wanted, {} free of {} total; shrinkers freed {}, OOM notifiers freed {}",
      KindName(kind), geometry_.size(), FreePages(), Totalram().value(), shrunk, oom_freed);
  spdlog::warn("{}", what);
  return Fail(ErrorCode::kNoMemory, what);
}

PageAllocator::Slot* PageAllocator::SlotLocked(Handle h) {
  const uint64_t index = h.value & 0xffffffffULL;
  if (index >= slots_.size()) return nullptr;
  Slot& s = slots_[index];
  if (!s.live || s.serial != (h.value >> 32)) return nullptr;
  return &s;
}

const PageAllocator::Slot* PageAllocator::SlotLocked(Handle h) const {
  return const_cast<PageAllocator*>(this)->SlotLocked(h);
}

bool PageAllocator::Free(Handle h) {
  MutexLock lock(mu_);
  Slot* s = SlotLocked(h);
  if (s == nullptr) {
    NoteErrorLocked(fmt::format("free of stale handle {:#x}", h.value));
    return false;
  }
  const uint64_t pfn = s->pfn;
  s->live = false;
  ++s->serial;
  free_slots_.push_back(static_cast<uint32_t>(h.value & 0xffffffffULL));
  owner_[pfn] = kNoSlot;
  ReleaseFrameLocked(pfn);
  return true;
}

std::optional<Pfn> PageAllocator::Locate(Handle h) const {
  MutexLock lock(mu_);
  const Slot* s = SlotLocked(h);
  if (s == nullptr) return std::nullopt;
  return Pfn{s->pfn};
}

void PageAllocator::ReleaseFrameLocked(uint64_t pfn) {
  frames_[pfn] = FrameState::kFree;
  // A page freed inside an isolated block stays out of the free lists.
  if (block_states_[BlockOf(pfn)] == BlockState::kOnline) free_[Z(ZoneOfBlock(BlockOf(pfn)))].Set(pfn);
}

void PageAllocator::NoteErrorLocked(std::string_view what) {
  integrity_errors_.fetch_add(1);
  last_error_ = std::string(what);
  spdlog::error("integrity error: {}", what);
}

void PageAllocator::ReportIntegrityError(std::string_view what) {
  MutexLock lock(mu_);
  NoteErrorLocked(what);
}

std::string PageAllocator::last_integrity_error() const {
  MutexLock lock(mu_);
  return last_error_;
}

// ---- GuestMemory ------------------------------------------------------------

std::optional<Pfn> PageAllocator::AllocBalloonPage() {
  // The balloon's mode (S4): light reclaim once, never the OOM path, no
  // retry beyond what that reclaim made possible.
  auto take = [this]() -> std::optional<Pfn> {
    MutexLock lock(mu_);
    if (auto pfn = TakeFreeLocked(PageKind::kMovable, FrameState::kBalloon)) return Pfn{*pfn};
    return std::nullopt;
  };
  if (auto p = take()) return p;
  // One reclaim pass of a batch, as the kernel's (SWAP_CLUSTER_MAX): the
  // pages it frees serve this and the next allocations.
  if (kernel_ == nullptr || kernel_->RunShrinkers(kReclaimBatch) == 0) return std::nullopt;
  return take();
}

void PageAllocator::FreePage(Pfn page) {
  MutexLock lock(mu_);
  if (page.value >= span_ || frames_[page.value] != FrameState::kBalloon) {
    NoteErrorLocked(fmt::format("balloon freed page {:#x}, which it does not hold", page.value));
    return;
  }
  ReleaseFrameLocked(page.value);
}

void PageAllocator::AdjustTotalram(Pfn page, Pages delta) { managed_[Z(ZoneOf(page))].fetch_add(delta.value()); }

Pages PageAllocator::Totalram() const { return Pages(managed_[0].load() + managed_[1].load()); }

Zone PageAllocator::ZoneOf(Pfn page) const {
  return page.value < span_ ? ZoneOfBlock(BlockOf(page.value)) : Zone::kMovable;
}

uint64_t PageAllocator::FreePages() const {
  MutexLock lock(mu_);
  return free_[0].count() + free_[1].count();
}

FrameCounts PageAllocator::Counts() const {
  MutexLock lock(mu_);
  return CountLocked(0, span_);
}

FrameCounts PageAllocator::BlockCounts(uint64_t block) const {
  MutexLock lock(mu_);
  return block < blocks_ ? CountLocked(block * pages_per_block_, pages_per_block_) : FrameCounts{};
}

FrameCounts PageAllocator::CountLocked(uint64_t first, uint64_t count) const {
  FrameCounts c;
  for (uint64_t pfn = first; pfn < first + count; ++pfn) {
    switch (frames_[pfn]) {
      case FrameState::kOffline: ++c.offline; break;
      case FrameState::kFree:
        ++(block_states_[BlockOf(pfn)] == BlockState::kIsolated ? c.isolated_free : c.free);
        break;
      case FrameState::kMovable: ++c.movable; break;
      case FrameState::kUnmovable: ++c.unmovable; break;
      case FrameState::kBalloon: ++c.balloon; break;
    }
  }
  return c;
}

FrameState PageAllocator::StateOf(Pfn page) const {
  MutexLock lock(mu_);
  return page.value < span_ ? frames_[page.value] : FrameState::kOffline;
}

// ---- memory blocks and hot-remove -----------------------------------------

BlockState PageAllocator::block_state(uint64_t block) const {
  MutexLock lock(mu_);
  return block < blocks_ ? block_states_[block] : BlockState::kOffline;
}

bool PageAllocator::OnlineBlock(uint64_t block) {
  MutexLock lock(mu_);
  if (block >= blocks_ || block_states_[block] != BlockState::kOffline) return false;
  OnlineLocked(block, Zone::kMovable);  // hot-added memory, as Linux onlines it
  return true;
}

void PageAllocator::OnlineLocked(uint64_t block, Zone zone) {
  zones_[block].store(static_cast<uint8_t>(zone));
  block_states_[block] = BlockState::kOnline;
  const uint64_t first = block * pages_per_block_;
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) {
    frames_[pfn] = FrameState::kFree;
    free_[Z(zone)].Set(pfn);
  }
  managed_[Z(zone)].fetch_add(static_cast<int64_t>(pages_per_block_));
}

bool PageAllocator::IsolateBlock(uint64_t block) {
  MutexLock lock(mu_);
  if (block >= blocks_ || block_states_[block] != BlockState::kOnline) return false;
  block_states_[block] = BlockState::kIsolated;
  const Zone zone = ZoneOfBlock(block);
  const uint64_t first = block * pages_per_block_;
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) free_[Z(zone)].Clear(pfn);
  return true;
}

void PageAllocator::UnisolateBlock(uint64_t block) {
  MutexLock lock(mu_);
  if (block >= blocks_ || block_states_[block] != BlockState::kIsolated) return;
  block_states_[block] = BlockState::kOnline;
  const Zone zone = ZoneOfBlock(block);
  const uint64_t first = block * pages_per_block_;
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) {
    if (frames_[pfn] == FrameState::kFree) free_[Z(zone)].Set(pfn);
  }
}

PageAllocator::BlockUse PageAllocator::UsedIn(uint64_t block) const {
  MutexLock lock(mu_);
  BlockUse use;
  if (block >= blocks_) return use;
  const uint64_t first = block * pages_per_block_;
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) {
    switch (frames_[pfn]) {
      case FrameState::kMovable: use.movable.push_back(Pfn{pfn}); break;
      case FrameState::kUnmovable: use.unmovable.push_back(Pfn{pfn}); break;
      case FrameState::kBalloon: use.balloon.push_back(Pfn{pfn}); break;
      case FrameState::kFree:
      case FrameState::kOffline: break;
    }
  }
  return use;
}

PageAllocator::MigrateResult PageAllocator::MigrateMovable(Pfn page) {
  MutexLock lock(mu_);
  if (page.value >= span_ || frames_[page.value] != FrameState::kMovable) return MigrateResult::kGone;
  const auto target = TakeFreeLocked(PageKind::kMovable, FrameState::kMovable);
  if (!target) return MigrateResult::kNoMemory;
  const uint32_t index = owner_[page.value];
  Slot& s = slots_[index];
  const auto from = PageBytes(page.value);
  const auto to = PageBytes(*target);
  std::memcpy(to.data(), from.data(), to.size());
  s.pfn = *target;
  owner_[*target] = index;
  owner_[page.value] = kNoSlot;
  ReleaseFrameLocked(page.value);
  if (s.generation != 0 && !CheckPattern(to, (uint64_t{s.serial} << 32) | index, s.generation)) {
    NoteErrorLocked(fmt::format("page of handle {:#x} differs from its pattern after migration {:#x} -> {:#x}",
                                (uint64_t{s.serial} << 32) | index, page.value, *target));
  }
  return MigrateResult::kMoved;
}

std::optional<Pfn> PageAllocator::AllocMigrationTarget() {
  MutexLock lock(mu_);
  if (auto pfn = TakeFreeLocked(PageKind::kMovable, FrameState::kBalloon)) return Pfn{*pfn};
  return std::nullopt;
}

bool PageAllocator::OfflineIsolated(uint64_t block) {
  MutexLock lock(mu_);
  if (block >= blocks_ || block_states_[block] != BlockState::kIsolated) return false;
  const uint64_t first = block * pages_per_block_;
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) {
    if (frames_[pfn] != FrameState::kFree) return false;
  }
  for (uint64_t pfn = first; pfn < first + pages_per_block_; ++pfn) frames_[pfn] = FrameState::kOffline;
  block_states_[block] = BlockState::kOffline;
  managed_[Z(ZoneOfBlock(block))].fetch_sub(static_cast<int64_t>(pages_per_block_));
  return true;
}

tl::expected<void, std::string> PageAllocator::CheckInvariants() const {
  MutexLock lock(mu_);
  auto fail = [](std::string what) { return tl::unexpected(std::move(what)); };
  int64_t present[2] = {0, 0};
  int64_t balloon[2] = {0, 0};
  uint64_t free_listed[2] = {0, 0};
  uint64_t owned = 0;
  for (uint64_t pfn = 0; pfn < span_; ++pfn) {
    const uint64_t b = BlockOf(pfn);
    const int z = Z(ZoneOfBlock(b));
    const FrameState st = frames_[pfn];
    if ((block_states_[b] == BlockState::kOffline) != (st == FrameState::kOffline)) {
      return fail(fmt::format("page {:#x} is {} in a block that is {}", pfn, static_cast<int>(st),
                              static_cast<int>(block_states_[b])));
    }
    if (st != FrameState::kOffline) ++present[z];
    if (st == FrameState::kBalloon) ++balloon[z];
    const bool should_list = st == FrameState::kFree && block_states_[b] == BlockState::kOnline;
    if (free_[z].Test(pfn) != should_list || free_[1 - z].Test(pfn)) {
      return fail(fmt::format("page {:#x}: free lists disagree with its state", pfn));
    }
    free_listed[z] += should_list ? 1 : 0;
    const bool user = st == FrameState::kMovable || st == FrameState::kUnmovable;
    if (user != (owner_[pfn] != kNoSlot)) return fail(fmt::format("page {:#x}: owner disagrees with state", pfn));
    if (user) {
      const Slot& s = slots_[owner_[pfn]];
      if (!s.live || s.pfn != pfn) return fail(fmt::format("page {:#x}: its handle points elsewhere", pfn));
      if (st == FrameState::kUnmovable && z != Z(Zone::kNormal)) {
        return fail(fmt::format("unmovable page {:#x} outside Zone Normal", pfn));
      }
      ++owned;
    }
  }
  uint64_t live = 0;
  for (const Slot& s : slots_) live += s.live ? 1 : 0;
  if (live != owned) return fail(fmt::format("{} live handles but {} pages owned through handles", live, owned));
  if (live + free_slots_.size() != slots_.size()) return fail("handle free list out of step");
  for (int z = 0; z < 2; ++z) {
    if (free_[z].count() != free_listed[z]) return fail("free list count out of step");
    if (managed_[z].load() != present[z] - balloon[z]) {
      return fail(fmt::format("zone {} usable total {} but {} pages online and {} in the balloon", z,
                              managed_[z].load(), present[z], balloon[z]));
    }
  }
  return {};
}

}  // namespace cmm::guest
