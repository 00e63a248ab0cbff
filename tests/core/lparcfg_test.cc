// SPEC's lparcfg view: keys, order, the " bytes" suffixes, the lines that
// appear only under a condition, and cmo_enabled=0 in simulate mode.
#include <gtest/gtest.h>

#include "core/lparcfg.h"

namespace cmm {
namespace {

TEST(Lparcfg, MemoryLinesInOrderThenCmoLines) {
  papr::MppData m;
  m.entitled_mem = 1073741824;
  m.mapped_entitled_mem = -1;
  m.group_num = 3;
  m.pool_num = 1;
  m.mem_weight = 128;
  m.unallocated_mem_weight = 7;
  m.unallocated_entitlement = 0;
  m.pool_size = 536870912;
  m.loan_request = -4096;
  m.backing_mem = 999424;
  EXPECT_EQ(FormatLparcfg(m, CmoView{.page_size = 4096, .faults = 2, .fault_time_us = 9}),
            "lparcfg 1.9\n"
            "entitled_memory=1073741824\n"
            "entitled_memory_group_number=3\n"
            "entitled_memory_pool_number=1\n"
            "entitled_memory_weight=128\n"
            "unallocated_entitled_memory_weight=7\n"
            "unallocated_io_mapping_entitlement=0\n"
            "entitled_memory_pool_size=536870912 bytes\n"
            "entitled_memory_loan_request=-4096\n"
            "backing_memory=999424 bytes\n"
            "cmo_enabled=1\n"
            "cmo_faults=2\n"
            "cmo_fault_time_usec=9\n"
            "cmo_primary_psp=0\n"
            "cmo_secondary_psp=0\n"
            "cmo_page_size=4096\n");
}

TEST(Lparcfg, MappedEntitlementShownUnlessMinusOnePoolSizeHiddenWhenMinusOne) {
  papr::MppData m;
  m.mapped_entitled_mem = 65536;
  m.pool_size = -1;
  const std::string t = FormatLparcfg(m, CmoView{.page_size = 4096});
  EXPECT_NE(t.find("entitled_memory=0\nmapped_entitled_memory=65536\nentitled_memory_group_number"), std::string::npos)
      << t;
  EXPECT_EQ(t.find("entitled_memory_pool_size"), std::string::npos) << t;
}

TEST(Lparcfg, S1_SimulateModeShowsCmoDisabledAndNothingElse) {
  EXPECT_EQ(FormatLparcfg(std::nullopt, std::nullopt), "lparcfg 1.9\ncmo_enabled=0\n");
}

}  // namespace
}  // namespace cmm
