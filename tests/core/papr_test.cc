// The hypervisor constants must be bit-exact with SPEC's "Hypervisor vocabulary".
#include "papr/papr.h"

#include <gtest/gtest.h>

namespace cmm::papr {

TEST(Papr, PageInitFlagValuesMatchSpec) {
  EXPECT_EQ(kPageStateChange, 0x0000000800000000ULL);  // 1 << (63-28)
  EXPECT_EQ(kPageUnused, (1ULL << 34) | (1ULL << 33));
  EXPECT_EQ(kPageSetUnused, kPageStateChange | kPageUnused);
  EXPECT_EQ(kPageSetLoaned, 0x0000000F00000000ULL);
  EXPECT_EQ(kPageSetLoaned, kPageSetUnused | (1ULL << 32));
  EXPECT_EQ(kPageSetActive, kPageStateChange);
}

TEST(Papr, HcallNumbers) {
  EXPECT_EQ(kHPageInit, 0x2CU);
  EXPECT_EQ(kHGetMpp, 0x2D4U);
}

TEST(Papr, ReturnCodesAndNamesMatchSpec) {
  EXPECT_EQ(kSuccess, 0);
  EXPECT_EQ(kHardware, -1);
  EXPECT_EQ(kFunction, -2);
  EXPECT_EQ(kPrivilege, -3);
  EXPECT_EQ(kParameter, -4);
  EXPECT_EQ(kNotEnoughResources, -44);
  EXPECT_EQ(RcName(kSuccess), "H_SUCCESS");
  EXPECT_EQ(RcName(kHardware), "H_HARDWARE");
  EXPECT_EQ(RcName(kFunction), "H_FUNCTION");
  EXPECT_EQ(RcName(kPrivilege), "H_PRIVILEGE");
  EXPECT_EQ(RcName(kParameter), "H_PARAMETER");
  EXPECT_EQ(RcName(kNotEnoughResources), "H_NOT_ENOUGH_RESOURCES");
  EXPECT_EQ(RcName(-99), "H_UNKNOWN");
}

TEST(Papr, MppDataDefaultsSayNotReported) {
  MppData d;
  EXPECT_EQ(d.mapped_entitled_mem, -1);
  EXPECT_EQ(d.pool_size, -1);
}

}  // namespace cmm::papr
