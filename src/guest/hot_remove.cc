// Hot-remove of memory blocks: the kernel's offline_pages sequence over the
// partition's allocator, balloon and guest RAM.
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "guest/partition.h"

namespace cmm::guest {

namespace {

// Pages can be freed or allocated while a block is being emptied; a few
// passes settle that, as the kernel's retry loop does.
constexpr int kPasses = 8;

std::string PfnList(const std::vector<Pfn>& pages) {
  constexpr size_t kShown = 8;
  std::string out;
  for (size_t i = 0; i < pages.size() && i < kShown; ++i) out += fmt::format("{}{:#x}", i == 0 ? "" : ", ", pages[i].value);
  if (pages.size() > kShown) out += fmt::format(" and {} more", pages.size() - kShown);
  return out;
}

}  // namespace

Result<HotRemoveReport> Partition::HotRemove(uint64_t block) {
  MutexLock lock(hotplug_mu_);
  return HotRemoveLocked(block);
}

Result<HotRemoveReport> Partition::HotRemoveLocked(uint64_t block) {
  if (block >= allocator_.blocks()) {
    return tl::unexpected(Error{
        ErrorCode::kInvalid, fmt::format("there is no block {}; blocks are numbered 0 to {}", block, allocator_.blocks() - 1)});
  }
  if (allocator_.block_state(block) != BlockState::kOnline) {
    return tl::unexpected(Error{ErrorCode::kInvalid, fmt::format("block {} is not online", block)});
  }
  if (blocks_online() <= 1) {
    return tl::unexpected(Error{ErrorCode::kInvalid, fmt::format("block {} is the last online block", block)});
  }

  kernel_.NotifyMemory(MemoryAction::kGoingOffline);  // the balloon takes its hotplug lock (S12)
  allocator_.IsolateBlock(block);
  auto cancel = [&](const std::string& why) -> Result<HotRemoveReport> {
    allocator_.UnisolateBlock(block);
    kernel_.NotifyMemory(MemoryAction::kCancelOffline);
    return tl::unexpected(
        Error{ErrorCode::kBusy, fmt::format("block {}: removal cancelled, nothing lost: {}", block, why)});
  };

  HotRemoveReport report;
  for (int pass = 0; pass < kPasses; ++pass) {
    const auto use = allocator_.UsedIn(block);
    if (!use.unmovable.empty()) {
      return cancel(fmt::format("{} unmovable page(s) cannot be migrated: pfn {}", use.unmovable.size(),
                                PfnList(use.unmovable)));
    }
    if (use.movable.empty() && use.balloon.empty()) break;
    for (const Pfn page : use.movable) {
      auto moved = allocator_.MigrateMovable(page);
      if (moved == PageAllocator::MigrateResult::kNoMemory && kernel_.RunShrinkers(use.movable.size()) > 0) {
        moved = allocator_.MigrateMovable(page);
      }
      if (moved == PageAllocator::MigrateResult::kNoMemory) {
        return cancel(fmt::format("no free page outside the block to migrate movable page {:#x} to", page.value));
      }
      report.movable_migrated += moved == PageAllocator::MigrateResult::kMoved ? 1 : 0;
    }
    for (const Pfn page : use.balloon) {
      if (!controller_->IsolatePage(page)) continue;  // given back meanwhile; the next pass sees it
      const auto target = allocator_.AllocMigrationTarget();
      if (!target) {
        controller_->PutbackPage(page);
        return cancel(fmt::format("no free page outside the block to migrate balloon page {:#x} to", page.value));
      }
      if (const int rc = controller_->MigratePage(page, *target); rc != 0) {
        allocator_.FreePage(*target);
        controller_->PutbackPage(page);
        return cancel(fmt::format("balloon page {:#x} could not be migrated: {}", page.value, std::strerror(rc)));
      }
      ++report.balloon_migrated;
    }
  }
  if (!allocator_.OfflineIsolated(block)) {
    const auto use = allocator_.UsedIn(block);
    return cancel(fmt::format("pages still in use after {} passes: movable {}, balloon {}", kPasses,
                              PfnList(use.movable), PfnList(use.balloon)));
  }
  kernel_.NotifyMemory(MemoryAction::kOffline);

  const uint64_t before = ram_.BackingBytes();
  const auto length = static_cast<uint64_t>(block_bytes_.value());
  if (auto released = ram_.Release(block * length, length); !released) {
    // The block is offline either way; its memory just stays with this process.
    return tl::unexpected(released.error().Within(fmt::format("block {} is offline but its memory was not returned", block)));
  }
  const uint64_t after = ram_.BackingBytes();
  report.bytes_released = Bytes(before > after ? static_cast<int64_t>(before - after) : 0);
  report.blocks.push_back(block);
  return report;
}

Result<HotRemoveReport> Partition::HotRemoveBytes(Bytes bytes) {
  if (bytes <= Bytes(0) || bytes % block_bytes_ != Bytes(0)) {
    return Fail(ErrorCode::kInvalid, fmt::format("hot-remove size must be a positive multiple of the {}-byte block size",
                                                 block_bytes_.value()));
  }
  MutexLock lock(hotplug_mu_);
  const auto wanted = static_cast<uint64_t>(bytes / block_bytes_);
  HotRemoveReport total;
  std::vector<std::string> refusals;
  for (uint64_t b = allocator_.blocks(); b-- > 0 && total.blocks.size() < wanted;) {
    if (allocator_.block_state(b) != BlockState::kOnline) continue;
    auto r = HotRemoveLocked(b);
    if (!r) {
      refusals.push_back(r.error().message);
      continue;
    }
    total.blocks.push_back(b);
    total.movable_migrated += r->movable_migrated;
    total.balloon_migrated += r->balloon_migrated;
    total.bytes_released += r->bytes_released;
  }
  if (total.blocks.size() < wanted) {
    return tl::unexpected(Error{
        refusals.empty() ? ErrorCode::kInvalid : ErrorCode::kBusy,
        fmt::format("removed {} of {} blocks ({}); {}", total.blocks.size(), wanted,
                    total.blocks.empty() ? "none" : fmt::format("blocks {}", fmt::join(total.blocks, ", ")),
                    refusals.empty() ? "not enough blocks online" : fmt::format("{}", fmt::join(refusals, "; ")))});
  }
  return total;
}

}  // namespace cmm::guest
