// The unit types carry their own arithmetic; mixing units does not compile.
#include <gtest/gtest.h>

#include "core/units.h"

namespace cmm {
namespace {

// What must not compile, checked by the compiler itself.
template <class A, class B>
concept Addable = requires(A a, B b) { a + b; };
template <class A, class B>
concept Subtractable = requires(A a, B b) { a - b; };
template <class A, class B>
concept Comparable = requires(A a, B b) { a < b; };

static_assert(Addable<Pages, Pages> && Addable<Bytes, Bytes> && Addable<Pfn, Pages>);
static_assert(!Addable<Pages, Bytes>, "pages and bytes do not add");
static_assert(!Addable<Pfn, Pfn>, "two page numbers do not add");
static_assert(!Addable<Pfn, uint64_t> && !Addable<Pages, int64_t>, "a bare number is not a count");
static_assert(!Addable<Pfn, Bytes>, "a page number moves by pages, not bytes");
static_assert(Subtractable<Pfn, Pfn> && std::is_same_v<decltype(Pfn{} - Pfn{}), Pages>);
static_assert(!Comparable<Pages, Bytes> && !Comparable<Pages, int64_t>);
static_assert(!std::is_convertible_v<int64_t, Pages> && !std::is_convertible_v<Pages, Bytes>);
template <class A, class B>
concept Divisible = requires(A a, B b) { a / b; };
static_assert(std::is_same_v<decltype(Bytes{} / Bytes{}), int64_t> && !Divisible<Bytes, Pages>,
              "bytes divide into blocks of bytes, not into pages");

TEST(Units, APageNumberMovesByPagesAndTwoOfThemArePagesApart) {
  const Pfn first{100};
  const Pfn later = first + Pages(28);
  EXPECT_EQ(later.value, 128u);
  EXPECT_EQ(later - first, Pages(28));
  EXPECT_EQ(first - later, Pages(-28));
}

TEST(Units, CountsAddSubtractStepAndScaleByAPlainNumber) {
  Pages p(10);
  ++p;
  --p;
  --p;
  EXPECT_EQ(p, Pages(9));
  EXPECT_EQ(p * 3, Pages(27));
  EXPECT_EQ(2 * p, Pages(18));
  EXPECT_EQ(-p + Pages(9), Pages(0));
}

TEST(Units, BytesCountInWholeBlocksWithWhatIsLeftOver) {
  EXPECT_EQ(MiB(256), Bytes(256 << 20));
  EXPECT_EQ(GiB(1), MiB(1024));
  EXPECT_EQ(KiB(4), Bytes(4096));
  EXPECT_EQ(GiB(1) / MiB(128), 8);  // how many blocks: a plain number
  EXPECT_EQ((MiB(300) % MiB(128)), MiB(44));
  EXPECT_EQ(MiB(300) / 3, MiB(100));
}

TEST(Units, TheSerialisedFormsCountUnsignedNoneBelowZeroAndTheLargestPastTheRange) {
  EXPECT_EQ(AsUnsigned(MiB(1)), uint64_t{1} << 20);
  EXPECT_EQ(AsUnsigned(Bytes(-5)), 0u);
  EXPECT_EQ(FromUnsigned<Bytes>(4096), KiB(4));
  EXPECT_EQ(FromUnsigned<Bytes>(UINT64_MAX), Bytes(INT64_MAX));
  EXPECT_EQ(FromUnsigned<Pages>(uint64_t{1} << 63), Pages(INT64_MAX));
}

TEST(Units, PagesBecomeBytesOnlyThroughThePageGeometry) {
  const PageGeometry g4(4096), g64(65536);
  EXPECT_EQ(g4.ToBytes(Pages(3)), Bytes(12288));
  EXPECT_EQ(g64.ToBytes(Pages(3)), Bytes(196608));
  EXPECT_EQ(g4.ToBytes(Pages(-2)), Bytes(-8192));  // a negative request stays negative
  // Whole pages only, truncating toward zero as the driver's division does.
  EXPECT_EQ(g4.WholePages(Bytes(12288 + 4095)), Pages(3));
  EXPECT_EQ(g4.WholePages(Bytes(-4097)), Pages(-1));
  EXPECT_EQ(g64.WholePages(g64.ToBytes(Pages(7))), Pages(7));
  EXPECT_EQ(g4.PageAt(g4.Address(Pfn{42}) + 4095), Pfn{42});
  EXPECT_EQ(g4.PagesToKb(g4.KbToPages(1024)), 1024u);
}

}  // namespace
}  // namespace cmm
