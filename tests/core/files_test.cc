// S1 parameters, S7 attributes and S8 disable, as text files.
#include <cerrno>

#include <gtest/gtest.h>

#include "core/control_files.h"
#include "fakes.h"

namespace cmm::testing {

const Writer kRoot{true};
const Writer kUser{false};

std::string Read(Rig& r, std::string_view name) { return r.ctrl.files().Read(name).value(); }
int WriteErr(Rig& r, std::string_view name, std::string_view text, Writer w = kRoot) {
  const auto res = r.ctrl.files().Write(name, text, w);
  return res ? 0 : res.error();
}

TEST(Params, S1_DefaultsReadAsTheKernelPrintsThem) {
  Rig r(1024, ParamValues{});
  EXPECT_EQ(Read(r, "delay"), "1\n");
  EXPECT_EQ(Read(r, "hotplug_delay"), "5\n");
  EXPECT_EQ(Read(r, "oom_kb"), "1024\n");
  EXPECT_EQ(Read(r, "min_mem_mb"), "256\n");
  EXPECT_EQ(Read(r, "debug"), "0\n");
  EXPECT_EQ(Read(r, "simulate"), "N\n");
  EXPECT_EQ(Read(r, "disable"), "0\n");
}

TEST(Params, S1_ModesAndGroups) {
  Rig r(1024);
  const auto params = r.ctrl.files().List(FileGroup::kParameters);
  ASSERT_EQ(params.size(), 7U);
  for (const auto& f : params) EXPECT_EQ(f.mode, f.name == "simulate" ? 0444U : 0644U) << f.name;
}

TEST(Params, S1_WritesFollowKstrtouint) {
  Rig r(1024);
  const auto n = r.ctrl.files().Write("delay", "0x10\n", kUser);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 5U);  // the whole text consumed
  EXPECT_EQ(Read(r, "delay"), "16\n");
  EXPECT_EQ(WriteErr(r, "hotplug_delay", "010"), 0);
  EXPECT_EQ(Read(r, "hotplug_delay"), "8\n");
  EXPECT_EQ(WriteErr(r, "oom_kb", "+2048"), 0);
  EXPECT_EQ(Read(r, "oom_kb"), "2048\n");
  EXPECT_EQ(WriteErr(r, "debug", "1\n"), 0);
  EXPECT_EQ(Read(r, "debug"), "1\n");
}

TEST(Params, S1_BadWritesAreEinvalAndLeaveTheValue) {
  Rig r(1024);
  for (const char* bad : {"-1", " 1", "1x", "", "4294967296x", "1\n\n", "0x"}) {
    EXPECT_EQ(WriteErr(r, "delay", bad), EINVAL) << bad;
    EXPECT_EQ(Read(r, "delay"), "1\n");
  }
}

TEST(Params, S1_ANumberTooLargeForTheTypeIsErangeAndLeavesTheValue) {
  Rig r(1024);
  for (const char* param : {"delay", "hotplug_delay", "oom_kb", "debug"}) {
    const std::string before = Read(r, param);
    EXPECT_EQ(WriteErr(r, param, "4294967296"), ERANGE) << param;
    EXPECT_EQ(WriteErr(r, param, "0x100000000\n"), ERANGE) << param;
    EXPECT_EQ(Read(r, param), before);
  }
}

TEST(Params, S1_MinMemMbIsUlong) {
  Rig r(1024);
  EXPECT_EQ(WriteErr(r, "min_mem_mb", "4294967296"), 0);
  EXPECT_EQ(Read(r, "min_mem_mb"), "4294967296\n");
  EXPECT_EQ(WriteErr(r, "min_mem_mb", "18446744073709551616"), ERANGE);
  EXPECT_EQ(Read(r, "min_mem_mb"), "4294967296\n");
}

TEST(Params, S1_SimulateIsReadOnlyEvenForRoot) {
  ParamValues p;
  p.simulate = true;
  Rig r(1024, p);
  EXPECT_EQ(Read(r, "simulate"), "Y\n");
  EXPECT_EQ(WriteErr(r, "simulate", "N", kRoot), EACCES);
  EXPECT_EQ(WriteErr(r, "simulate", "0", kRoot), EACCES);
  EXPECT_EQ(Read(r, "simulate"), "Y\n");
}

TEST(Attributes, S7_LoanedAndTargetReadInKb) {
  Rig r(1024);
  r.hv.mpp.loan_request = 30 * 4096;
  r.ctrl.ComputeTarget();
  ASSERT_EQ(r.ctrl.Inflate(Pages(12)), Pages(0));
  EXPECT_EQ(Read(r, "loaned_kb"), "48\n");
  EXPECT_EQ(Read(r, "loaned_target_kb"), "120\n");
  EXPECT_EQ(Read(r, "oom_freed_kb"), "0\n");
}

TEST(Attributes, S7_ReadOnlyAttributesRefuseWritesWithEacces) {
  Rig r(1024);
  EXPECT_EQ(WriteErr(r, "loaned_kb", "0", kRoot), EACCES);
  EXPECT_EQ(WriteErr(r, "loaned_target_kb", "0", kRoot), EACCES);
  const auto all = r.ctrl.files().List(FileGroup::kDevice);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0].mode, 0444U);
  EXPECT_EQ(all[1].mode, 0444U);
  EXPECT_EQ(all[2].mode, 0644U);
}

TEST(Attributes, S7_OomFreedKbWriteRules) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Inflate(Pages(600)), Pages(0));
  Pages freed(0);
  r.ctrl.OnOom(freed);
  EXPECT_EQ(Read(r, "oom_freed_kb"), "1024\n");
  // Not an administrator: EPERM, checked before the value.
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "5", kUser), EPERM);
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "0", kUser), EPERM);
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "5", kRoot), EBADMSG);
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "12abc", kRoot), EBADMSG);
  EXPECT_EQ(Read(r, "oom_freed_kb"), "1024\n");
  // No digits read as 0: a reset.
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "x", kRoot), 0);
  EXPECT_EQ(Read(r, "oom_freed_kb"), "0\n");
  r.ctrl.OnOom(freed);
  EXPECT_EQ(WriteErr(r, "oom_freed_kb", "0\n", kRoot), 0);
  EXPECT_EQ(Read(r, "oom_freed_kb"), "0\n");
}

TEST(Attributes, S7_SimulateLoanTargetReadsBackInHex) {
  ParamValues p = Rig::Defaults();
  p.simulate = true;
  Rig r(1024, p);
  EXPECT_EQ(Read(r, "simulate_loan_target_kb"), "0\n");
  EXPECT_EQ(WriteErr(r, "simulate_loan_target_kb", "10240", kUser), 0);
  EXPECT_EQ(Read(r, "simulate_loan_target_kb"), "2800\n");
  EXPECT_EQ(WriteErr(r, "simulate_loan_target_kb", "0x400\n"), 0);
  EXPECT_EQ(Read(r, "simulate_loan_target_kb"), "400\n");
  EXPECT_EQ(WriteErr(r, "simulate_loan_target_kb", "-4"), EINVAL);
  EXPECT_EQ(WriteErr(r, "simulate_loan_target_kb", "12k"), EINVAL);
  EXPECT_EQ(Read(r, "simulate_loan_target_kb"), "400\n");
  EXPECT_EQ(r.ctrl.files().List(FileGroup::kDevice).size(), 4U);
}

TEST(Attributes, S7_SimulateLoanTargetAbsentInNormalMode) {
  Rig r(1024);
  EXPECT_FALSE(r.ctrl.files().Exists("simulate_loan_target_kb"));
  EXPECT_EQ(r.ctrl.files().Read("simulate_loan_target_kb").error(), ENOENT);
  EXPECT_EQ(WriteErr(r, "simulate_loan_target_kb", "1"), ENOENT);
  for (const auto& f : r.ctrl.files().List()) EXPECT_NE(f.name, "simulate_loan_target_kb");
}

TEST(Attributes, UnknownNameIsEnoent) {
  Rig r(1024);
  EXPECT_EQ(r.ctrl.files().Read("nope").error(), ENOENT);
  EXPECT_EQ(WriteErr(r, "nope", "1"), ENOENT);
}

TEST(Disable, S8_DisableOneZeroOneLeavesNoPageLoaned) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 100 * 4096;
  r.Round();
  ASSERT_EQ(r.ctrl.loaned(), Pages(100));

  EXPECT_EQ(WriteErr(r, "disable", "1"), 0);
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_TRUE(r.hv.loaned.empty());
  EXPECT_FALSE(r.thread.running());
  EXPECT_EQ(Read(r, "disable"), "1\n");

  EXPECT_EQ(WriteErr(r, "disable", "0"), 0);
  EXPECT_TRUE(r.thread.running());
  EXPECT_EQ(Read(r, "disable"), "0\n");
  r.Round();
  EXPECT_EQ(r.ctrl.loaned(), Pages(100));

  EXPECT_EQ(WriteErr(r, "disable", "1\n"), 0);
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_TRUE(r.hv.loaned.empty());
  EXPECT_EQ(r.mem.Totalram(), Pages(1024));
  EXPECT_EQ(r.thread.starts, 2);
  EXPECT_EQ(r.thread.stops, 2);
}

TEST(Disable, S8_TextRules) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_EQ(WriteErr(r, "disable", "2"), EINVAL);
  EXPECT_EQ(WriteErr(r, "disable", "10"), EINVAL);
  EXPECT_EQ(Read(r, "disable"), "0\n");
  // No digits read as 0; so do "x" and "-1".
  EXPECT_EQ(WriteErr(r, "disable", "x"), 0);
  EXPECT_EQ(WriteErr(r, "disable", "-1"), 0);
  EXPECT_EQ(Read(r, "disable"), "0\n");
  // Trailing text after the digits is ignored.
  EXPECT_EQ(WriteErr(r, "disable", "1abc"), 0);
  EXPECT_EQ(Read(r, "disable"), "1\n");
  // Truncated to a 32-bit int: 2^32 + 0 is 0.
  EXPECT_EQ(WriteErr(r, "disable", "4294967296"), 0);
  EXPECT_EQ(Read(r, "disable"), "0\n");
  EXPECT_EQ(WriteErr(r, "disable", "4294967297"), 0);
  EXPECT_EQ(Read(r, "disable"), "1\n");
  EXPECT_EQ(WriteErr(r, "disable", "4294967295"), EINVAL);  // -1 as an int
}

TEST(Disable, S8_SameValueTwiceDoesNothingMore) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_EQ(WriteErr(r, "disable", "0"), 0);
  EXPECT_EQ(r.thread.starts, 1);
  EXPECT_EQ(WriteErr(r, "disable", "1"), 0);
  EXPECT_EQ(WriteErr(r, "disable", "1"), 0);
  EXPECT_EQ(r.thread.stops, 1);
}

TEST(Disable, S8_ThreadStartFailureKeepsItDisabled) {
  ParamValues p = Rig::Defaults();
  p.disable = 1;
  Rig r(1024, p);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_FALSE(r.thread.running());
  r.thread.fail_errno = EAGAIN;
  EXPECT_EQ(WriteErr(r, "disable", "0"), EAGAIN);
  EXPECT_EQ(Read(r, "disable"), "1\n");
}

}  // namespace cmm::testing

namespace cmm::testing {

TEST(Params, S1_SetAtStartUsesTheFileRules) {
  ParamValues v;
  EXPECT_EQ(SetParamAtStart(v, "delay", "0x3"), 0);
  EXPECT_EQ(v.delay, 3U);
  EXPECT_EQ(SetParamAtStart(v, "delay", "-3"), EINVAL);
  EXPECT_EQ(v.delay, 3U);
  EXPECT_EQ(SetParamAtStart(v, "min_mem_mb", "5000000000"), 0);
  EXPECT_EQ(v.min_mem_mb, 5000000000U);
  EXPECT_EQ(SetParamAtStart(v, "oom_kb", "4294967296"), ERANGE);
  EXPECT_EQ(SetParamAtStart(v, "simulate", "Y"), 0);
  EXPECT_TRUE(v.simulate);
  EXPECT_EQ(SetParamAtStart(v, "simulate", "off"), 0);
  EXPECT_FALSE(v.simulate);
  EXPECT_EQ(SetParamAtStart(v, "simulate", "maybe"), EINVAL);
  EXPECT_EQ(SetParamAtStart(v, "disable", "1"), 0);
  EXPECT_EQ(v.disable, 1U);
  EXPECT_EQ(SetParamAtStart(v, "disable", "2"), EINVAL);
  EXPECT_EQ(SetParamAtStart(v, "loaned_kb", "1"), ENOENT);
  EXPECT_EQ(ParamNames().size(), 7U);
}

}  // namespace cmm::testing
