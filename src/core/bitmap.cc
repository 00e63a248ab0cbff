#include "core/bitmap.h"

#include <bit>

namespace cmm {

namespace {
constexpr uint64_t WordsFor(uint64_t bits) { return (bits + 63) / 64; }
}  // namespace

void PageBitmap::Resize(uint64_t size) {
  if (size < size_) {
    for (uint64_t i = size; i < size_; ++i) Clear(i);
  }
  size_ = size;
  words_.resize(WordsFor(size), 0);
  summary_.resize(WordsFor(words_.size()), 0);
  if (count_ == 0) {
    low_ = size_;
    high_ = 0;
  }
  if (low_ > size_) low_ = size_;
  if (high_ > size_) high_ = size_;
}

bool PageBitmap::Set(uint64_t i) {
  uint64_t& w = words_[i >> 6];
  const uint64_t bit = uint64_t{1} << (i & 63);
  if (w & bit) return false;
  w |= bit;
  summary_[i >> 12] |= uint64_t{1} << ((i >> 6) & 63);
  ++count_;
  if (i < low_) low_ = i;
  if (i + 1 > high_) high_ = i + 1;
  return true;
}

bool PageBitmap::Clear(uint64_t i) {
  uint64_t& w = words_[i >> 6];
  const uint64_t bit = uint64_t{1} << (i & 63);
  if (!(w & bit)) return false;
  w &= ~bit;
  if (w == 0) summary_[i >> 12] &= ~(uint64_t{1} << ((i >> 6) & 63));
  --count_;
  return true;
}

std::optional<uint64_t> PageBitmap::FindFirst(uint64_t from) const {
  const bool from_bottom = from <= low_;
  const auto found = ScanFirst(from_bottom ? low_ : from);
  if (from_bottom) low_ = found ? *found : size_;
  return found;
}

std::optional<uint64_t> PageBitmap::FindLast(uint64_t before) const {
  if (before > size_) before = size_;
  const bool from_top = before >= high_;
  const auto found = ScanLast(from_top ? high_ : before);
  if (from_top) high_ = found ? *found + 1 : 0;
  return found;
}

std::optional<uint64_t> PageBitmap::ScanFirst(uint64_t from) const {
  if (from >= size_ || count_ == 0) return std::nullopt;
  uint64_t wi = from >> 6;
  // The word holding `from`, masked below it.
  uint64_t w = words_[wi] & (~uint64_t{0} << (from & 63));
  if (w) return (wi << 6) + std::countr_zero(w);
  // Next non-empty word through the summary.
  uint64_t si = (wi + 1) >> 6;
  if (si >= summary_.size()) return std::nullopt;
  uint64_t s = summary_[si] & (~uint64_t{0} << ((wi + 1) & 63));
  while (true) {
    if (s) {
      const uint64_t word = (si << 6) + std::countr_zero(s);
      return (word << 6) + std::countr_zero(words_[word]);
    }
    if (++si >= summary_.size()) return std::nullopt;
    s = summary_[si];
  }
}

std::optional<uint64_t> PageBitmap::ScanLast(uint64_t before) const {
  if (before == 0 || count_ == 0) return std::nullopt;
  const uint64_t last = before - 1;
  uint64_t wi = last >> 6;
  const unsigned keep = (last & 63) + 1;  // bits 0..last&63
  uint64_t w = words_[wi] & (keep == 64 ? ~uint64_t{0} : ((uint64_t{1} << keep) - 1));
  if (w) return (wi << 6) + 63 - std::countl_zero(w);
  if (wi == 0) return std::nullopt;
  // Previous non-empty word through the summary.
  const uint64_t prev = wi - 1;
  uint64_t si = prev >> 6;
  const unsigned skeep = (prev & 63) + 1;
  uint64_t s = summary_[si] & (skeep == 64 ? ~uint64_t{0} : ((uint64_t{1} << skeep) - 1));
  while (true) {
    if (s) {
      const uint64_t word = (si << 6) + 63 - std::countl_zero(s);
      return (word << 6) + 63 - std::countl_zero(words_[word]);
    }
    if (si == 0) return std::nullopt;
    s = summary_[--si];
  }
}

uint64_t PageBitmap::MemoryBytes() const {
  return (words_.capacity() + summary_.capacity()) * sizeof(uint64_t) + sizeof(*this);
}

}  // namespace cmm
