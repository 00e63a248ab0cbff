// The balloon's list of loaned pages (balloon_dev_info). It lives outside
// the pages: a loaned page's memory belongs to the hypervisor and is never
// touched. One bit per page frame of guest RAM, plus the few pages that
// compaction has isolated.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/bitmap.h"
#include "core/mutex.h"
#include "core/units.h"

namespace cmm {

class Balloon {
 public:
  explicit Balloon(uint64_t page_span) : pages_(page_span) {}

  void Enqueue(Pfn p);
  // The highest-numbered page in the balloon, removed; none when empty.
  std::optional<Pfn> Dequeue();

  // Compaction: take a page out of the list for migration (false if it is
  // not in the balloon), put it back, or replace it by a new page.
  bool Isolate(Pfn p);
  void Putback(Pfn p);
  // Inserts `fresh`, forgets isolated `old`. False if `old` is not isolated.
  bool Replace(Pfn old, Pfn fresh);

  uint64_t listed() const;
  uint64_t isolated() const;
  bool Contains(Pfn p) const;     // listed or isolated
  bool IsIsolated(Pfn p) const;
  // Every page the balloon holds, listed then isolated.
  std::vector<Pfn> Snapshot() const;
  // Listed pages in [first, first + count), for hot-remove of a block.
  std::vector<Pfn> ListedIn(uint64_t first, uint64_t count) const;
  uint64_t BookkeepingBytes() const;

 private:
  bool IsolatedLocked(Pfn p) const REQUIRES(mu_);

  mutable Mutex mu_;  // guards everything below (pages_lock)
  PageBitmap pages_ GUARDED_BY(mu_);
  std::vector<Pfn> isolated_ GUARDED_BY(mu_);  // small: pages in flight during compaction
};

}  // namespace cmm
