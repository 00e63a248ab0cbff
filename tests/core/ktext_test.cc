// S1/S7/S8 text rules: kstrtoul base 0, simple_strtoul base 10, formats.
#include "core/ktext.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace cmm::ktext {

constexpr uint64_t kUint = 0xFFFFFFFFu;

TEST(Ktext, S1_DecimalHexOctalAndPlus) {
  EXPECT_EQ(ParseUnsigned("10", kUint).value(), 10U);
  EXPECT_EQ(ParseUnsigned("10\n", kUint).value(), 10U);
  EXPECT_EQ(ParseUnsigned("0x10", kUint).value(), 16U);
  EXPECT_EQ(ParseUnsigned("0X1f\n", kUint).value(), 31U);
  EXPECT_EQ(ParseUnsigned("010", kUint).value(), 8U);
  EXPECT_EQ(ParseUnsigned("0", kUint).value(), 0U);
  EXPECT_EQ(ParseUnsigned("+7", kUint).value(), 7U);
  EXPECT_EQ(ParseUnsigned("+0x7", kUint).value(), 7U);
}

TEST(Ktext, S1_RejectsWithEinval) {
  for (const char* bad : {"", "\n", "-1", " 1", "1 ", "1\n\n", "abc", "1a", "08", "0x", "0xg", "++1", "+",
                          "1\r\n", "4294967296x"}) {
    const auto r = ParseUnsigned(bad, kUint);
    ASSERT_FALSE(r.has_value()) << "accepted '" << bad << "'";
    EXPECT_EQ(r.error(), EINVAL) << bad;
  }
}

TEST(Ktext, S1_ANumberTooLargeForTheTypeIsErange) {
  EXPECT_EQ(ParseUnsigned("4294967295", kUint).value(), 4294967295U);
  EXPECT_EQ(ParseUnsigned("4294967296", kUint).error(), ERANGE);
  EXPECT_EQ(ParseUnsigned("0x100000000\n", kUint).error(), ERANGE);
  EXPECT_EQ(ParseUnsigned("18446744073709551615", UINT64_MAX).value(), UINT64_MAX);
  EXPECT_EQ(ParseUnsigned("18446744073709551616", UINT64_MAX).error(), ERANGE);
  EXPECT_EQ(ParseUnsigned("0x10000000000000000", UINT64_MAX).error(), ERANGE);
  // As kstrtoull: the overflow is found while reading digits, before the
  // text after them is looked at; within 64 bits, a bad tail is EINVAL.
  EXPECT_EQ(ParseUnsigned("99999999999999999999x", UINT64_MAX).error(), ERANGE);
  EXPECT_EQ(ParseUnsigned("4294967296x", kUint).error(), EINVAL);
  EXPECT_EQ(ParseUnsigned("+4294967296", kUint).error(), ERANGE);
}

TEST(Ktext, S1_TextEndsAtNul) {
  EXPECT_EQ(ParseUnsigned(std::string_view("5\0junk", 6), kUint).value(), 5U);
}

TEST(Ktext, S7_SimpleStrtoulReadsLeadingDigitsOnly) {
  EXPECT_EQ(SimpleStrtoul10("0"), 0U);
  EXPECT_EQ(SimpleStrtoul10("12abc"), 12U);
  EXPECT_EQ(SimpleStrtoul10("abc"), 0U);
  EXPECT_EQ(SimpleStrtoul10("-1"), 0U);
  EXPECT_EQ(SimpleStrtoul10("+1"), 0U);
  EXPECT_EQ(SimpleStrtoul10("0x5"), 0U);
  EXPECT_EQ(SimpleStrtoul10(" 5"), 0U);
  EXPECT_EQ(SimpleStrtoul10("18446744073709551617"), 1U);  // wraps like the kernel
}

TEST(Ktext, S1_S7_Formats) {
  EXPECT_EQ(Decimal(0), "0\n");
  EXPECT_EQ(Decimal(18446744073709551615ULL), "18446744073709551615\n");
  EXPECT_EQ(Hex(10240), "2800\n");
  EXPECT_EQ(YesNo(true), "Y\n");
  EXPECT_EQ(YesNo(false), "N\n");
}

}  // namespace cmm::ktext

#include "core/names.h"

namespace cmm {
namespace {

TEST(Names, OneRuleForEveryName) {
  for (const char* ok : {"web1", "db_2", "a.b-c", "A", "x-"}) EXPECT_TRUE(ValidName(ok)) << ok;
  for (const char* bad : {"", ".hidden", "-opt", "a b", "a/b", "ü"}) EXPECT_FALSE(ValidName(bad)) << bad;
  EXPECT_TRUE(ValidName(std::string(64, 'n')));
  EXPECT_FALSE(ValidName(std::string(65, 'n')));
  static_assert(ValidName("web1"));  // usable at compile time
}

}  // namespace
}  // namespace cmm
