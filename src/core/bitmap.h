// A set of page numbers as a two-level bitmap: one bit per page plus one
// summary bit per 64-page word, so finding the lowest or highest member
// skips empty regions quickly. Costs 1/8 byte per page of the range it covers.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace cmm {

class PageBitmap {
 public:
  explicit PageBitmap(uint64_t size = 0) { Resize(size); }

  // Grows (or shrinks) the covered range; members beyond a shrink are dropped.
  void Resize(uint64_t size);
  uint64_t size() const { return size_; }
  uint64_t count() const { return count_; }
  bool empty() const { return count_ == 0; }

  bool Test(uint64_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  // Return false if the bit was already in the requested state.
  bool Set(uint64_t i);
  bool Clear(uint64_t i);

  // Lowest member >= from, highest member < before.
  std::optional<uint64_t> FindFirst(uint64_t from = 0) const;
  std::optional<uint64_t> FindLast(uint64_t before) const;

 private:
  std::optional<uint64_t> ScanFirst(uint64_t from) const;
  std::optional<uint64_t> ScanLast(uint64_t before) const;

 public:
  std::optional<uint64_t> FindLast() const { return FindLast(size_); }

  // Bytes this structure holds, for bookkeeping reports.
  uint64_t MemoryBytes() const;

 private:
  uint64_t size_ = 0;
  uint64_t count_ = 0;
  std::vector<uint64_t> words_;    // bit i of word w: page w*64+i
  std::vector<uint64_t> summary_;  // bit j of summary s: words_[s*64+j] != 0
  // No member lies below low_ or at/above high_; kept loose (clears leave
  // them be) and tightened by searches, so repeated lowest/highest lookups
  // do not rescan the same empty words.
  mutable uint64_t low_ = 0;
  mutable uint64_t high_ = 0;
};

}  // namespace cmm
