// Sizes as people write and read them: binary units, exact or refused.
#include "core/size_text.h"

#include <gtest/gtest.h>

namespace cmm {
namespace {

TEST(SizeText, ParsesBinaryUnitsInEitherCaseAndRefusesBadTextAndOverflow) {
  EXPECT_EQ(ParseSize("4096"), 4096u);
  EXPECT_EQ(ParseSize("64k"), 64u << 10);
  EXPECT_EQ(ParseSize("512M"), 512u << 20);
  EXPECT_EQ(ParseSize("2GiB"), uint64_t{2} << 30);
  EXPECT_EQ(ParseSize("1T"), uint64_t{1} << 40);
  for (const char* bad : {"", "M", "12X", "-1M", "1.5G", "18446744073709551616", "16777216T"}) {
    EXPECT_FALSE(ParseSize(bad).has_value()) << bad;
  }
}

TEST(SizeText, AQuantityOfMemoryMustFitTheSignedRange) {
  EXPECT_EQ(ParseBytes("512M"), MiB(512));
  EXPECT_EQ(ParseBytes("9223372036854775807"), Bytes(INT64_MAX));
  EXPECT_FALSE(ParseBytes("9223372036854775808").has_value());
  EXPECT_FALSE(ParseBytes("nope").has_value());
}

TEST(SizeText, FormatsWholeAndFractionalBinaryUnitsAndNegativeQuantities) {
  EXPECT_EQ(FormatBytes(uint64_t{512}), "512 B");
  EXPECT_EQ(FormatBytes(uint64_t{4096}), "4 KiB");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 29), "1.5 GiB");
  EXPECT_EQ(FormatBytes(MiB(256)), "256 MiB");
  EXPECT_EQ(FormatBytes(-MiB(1)), "-1 MiB");
  EXPECT_EQ(FormatBytes(Bytes(INT64_MIN)), "-8388608 TiB");  // 2^63 bytes
}

}  // namespace
}  // namespace cmm
