// Strong unit types: a page count is not a byte count is not a page number.
// Each carries the arithmetic that makes sense for it (pages add to pages,
// a page number moves by pages, two page numbers are pages apart), and
// pages become bytes only through the page geometry; anything else does
// not compile.
#pragma once

#include <compare>
#include <cstdint>
#include <ostream>

namespace cmm {

// A signed count of something; the kernel's target math is signed.
template <class Tag>
class Count {
 public:
  constexpr Count() = default;
  constexpr explicit Count(int64_t v) : v_(v) {}
  constexpr int64_t value() const { return v_; }

  constexpr Count& operator+=(Count o) { v_ += o.v_; return *this; }
  constexpr Count& operator-=(Count o) { v_ -= o.v_; return *this; }
  constexpr Count& operator++() { ++v_; return *this; }
  constexpr Count& operator--() { --v_; return *this; }
  friend constexpr Count operator+(Count a, Count b) { return a += b; }
  friend constexpr Count operator-(Count a, Count b) { return a -= b; }
  friend constexpr Count operator-(Count a) { return Count(-a.v_); }
  // Scaling by a plain number (so many per block), not by another count.
  friend constexpr Count operator*(Count a, int64_t k) { return Count(a.v_ * k); }
  friend constexpr Count operator*(int64_t k, Count a) { return Count(a.v_ * k); }
  friend constexpr Count operator/(Count a, int64_t k) { return Count(a.v_ / k); }
  // How many whole `b` fit in `a`, and what is left over (blocks of bytes).
  friend constexpr int64_t operator/(Count a, Count b) { return a.v_ / b.v_; }
  friend constexpr Count operator%(Count a, Count b) { return Count(a.v_ % b.v_); }
  friend constexpr auto operator<=>(Count, Count) = default;

 private:
  int64_t v_ = 0;
};

// Printed as the bare number (test failures, logs).
template <class Tag>
std::ostream& operator<<(std::ostream& os, Count<Tag> c) {
  return os << c.value();
}

struct PagesTag {};
struct BytesTag {};
using Pages = Count<PagesTag>;
using Bytes = Count<BytesTag>;

// The serialised forms (wire messages, status JSON) count unsigned: there a
// negative count is none, and a number past the signed range reads as the
// largest count. Code in between passes the typed count.
template <class C>
constexpr uint64_t AsUnsigned(C c) {
  return c.value() < 0 ? 0 : static_cast<uint64_t>(c.value());
}
template <class C>
constexpr C FromUnsigned(uint64_t v) {
  return C(v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
}

constexpr Bytes KiB(int64_t n) { return Bytes(n << 10); }
constexpr Bytes MiB(int64_t n) { return Bytes(n << 20); }
constexpr Bytes GiB(int64_t n) { return Bytes(n << 30); }

// A page frame number: the page's index in guest RAM. Its guest physical
// address is pfn * page size.
struct Pfn {
  uint64_t value = 0;
  friend constexpr auto operator<=>(Pfn, Pfn) = default;
  // The page `n` pages on; and how many pages one page number lies past another.
  friend constexpr Pfn operator+(Pfn p, Pages n) { return Pfn{p.value + static_cast<uint64_t>(n.value())}; }
  friend constexpr Pages operator-(Pfn a, Pfn b) { return Pages(static_cast<int64_t>(a.value - b.value)); }
};

// The guest page size and the conversions the driver uses (KB2PAGES/PAGES2KB).
class PageGeometry {
 public:
  // page_size must be a power of two >= 1 KiB.
  constexpr explicit PageGeometry(uint64_t page_size) : size_(page_size), shift_(Log2(page_size)) {}
  constexpr uint64_t size() const { return size_; }
  constexpr unsigned shift() const { return shift_; }
  constexpr uint64_t Address(Pfn p) const { return p.value << shift_; }
  constexpr Pages KbToPages(uint64_t kb) const { return Pages(static_cast<int64_t>(kb >> (shift_ - 10))); }
  constexpr uint64_t PagesToKb(Pages p) const { return static_cast<uint64_t>(p.value()) << (shift_ - 10); }
  constexpr Bytes ToBytes(Pages p) const { return Bytes(p.value() * static_cast<int64_t>(size_)); }
  // The whole pages in `b` (a partial page does not count).
  constexpr Pages WholePages(Bytes b) const { return Pages(b.value() / static_cast<int64_t>(size_)); }
  // The page that holds byte `address` of guest RAM.
  constexpr Pfn PageAt(uint64_t address) const { return Pfn{address >> shift_}; }

  static constexpr bool Valid(uint64_t page_size) {
    return page_size >= 1024 && (page_size & (page_size - 1)) == 0;
  }

 private:
  static constexpr unsigned Log2(uint64_t v) {
    unsigned s = 0;
    while ((uint64_t{1} << s) < v) ++s;
    return s;
  }
  uint64_t size_;
  unsigned shift_;
};

}  // namespace cmm
