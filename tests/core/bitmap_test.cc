#include "core/bitmap.h"

#include <random>
#include <set>

#include <gtest/gtest.h>

namespace cmm {

TEST(PageBitmap, FindFirstAndLastAcrossWordsAndSummaries) {
  PageBitmap b(10000);
  EXPECT_FALSE(b.FindFirst().has_value());
  EXPECT_FALSE(b.FindLast().has_value());
  b.Set(0);
  b.Set(63);
  b.Set(64);
  b.Set(4095);
  b.Set(4096);
  b.Set(9999);
  EXPECT_EQ(b.count(), 6U);
  EXPECT_EQ(*b.FindFirst(0), 0U);
  EXPECT_EQ(*b.FindFirst(1), 63U);
  EXPECT_EQ(*b.FindFirst(65), 4095U);
  EXPECT_EQ(*b.FindFirst(4097), 9999U);
  EXPECT_FALSE(b.FindFirst(10000).has_value());
  EXPECT_EQ(*b.FindLast(), 9999U);
  EXPECT_EQ(*b.FindLast(9999), 4096U);
  EXPECT_EQ(*b.FindLast(4096), 4095U);
  EXPECT_EQ(*b.FindLast(64), 63U);
  EXPECT_EQ(*b.FindLast(1), 0U);
  EXPECT_FALSE(b.FindLast(0).has_value());
  EXPECT_FALSE(b.Set(64));
  EXPECT_TRUE(b.Clear(64));
  EXPECT_FALSE(b.Clear(64));
}

TEST(PageBitmap, MatchesASetUnderRandomOperations) {
  std::mt19937_64 rng(7);
  const uint64_t n = 70000;
  PageBitmap b(n);
  std::set<uint64_t> ref;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t x = rng() % n;
    if (rng() % 2) {
      EXPECT_EQ(b.Set(x), ref.insert(x).second);
    } else {
      EXPECT_EQ(b.Clear(x), ref.erase(x) == 1);
    }
    const uint64_t q = rng() % (n + 1);
    auto it = ref.lower_bound(q);
    auto f = b.FindFirst(q);
    ASSERT_EQ(f.has_value(), it != ref.end());
    if (f) {
      ASSERT_EQ(*f, *it);
    }
    auto l = b.FindLast(q);
    auto lit = ref.lower_bound(q);
    ASSERT_EQ(l.has_value(), lit != ref.begin());
    if (l) {
      ASSERT_EQ(*l, *std::prev(lit));
    }
  }
  EXPECT_EQ(b.count(), ref.size());
}

TEST(PageBitmap, ResizeKeepsMembersInRange) {
  PageBitmap b(100);
  b.Set(10);
  b.Set(90);
  b.Resize(50);
  EXPECT_EQ(b.count(), 1U);
  b.Resize(100000);
  EXPECT_FALSE(b.Test(90));
  b.Set(99999);
  EXPECT_EQ(*b.FindLast(), 99999U);
}

}  // namespace cmm
