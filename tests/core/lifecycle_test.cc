// S9 start, S10 stop, S11 restart.
#include <cerrno>

#include <gtest/gtest.h>

#include "fakes.h"

namespace cmm::testing {

using Events = std::vector<std::string>;

TEST(Start, S9_RefusesWithoutCmoUnlessSimulating) {
  Rig r(64);
  r.hv.has_cmo = false;
  EXPECT_EQ(r.ctrl.Start(), EOPNOTSUPP);
  EXPECT_TRUE(r.kernel.events.empty());
  EXPECT_FALSE(r.thread.running());

  ParamValues p = Rig::Defaults();
  p.simulate = true;
  Rig s(64, p);
  s.hv.has_cmo = false;
  EXPECT_EQ(s.ctrl.Start(), 0);
}

TEST(Start, S9_RefusesWithNoHypervisorAtAll) {
  FakeClock clock;
  FakeGuestMemory mem(64);
  FakeKernel kernel;
  FakePollThread thread;
  CapturingLog log;
  Controller c(ParamValues{}, ControllerPorts{nullptr, mem, kernel, thread, clock, log});
  EXPECT_EQ(c.Start(), EOPNOTSUPP);
}

TEST(Start, S9_RegistersInOrderThenStartsThread) {
  Rig r(64);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_EQ(r.kernel.events, (Events{"register oom", "register reboot", "register attributes", "register memory"}));
  EXPECT_EQ(r.kernel.memory_priority, 1);
  EXPECT_TRUE(r.thread.running());
  EXPECT_EQ(r.kernel.files, &r.ctrl.files());
}

TEST(Start, S9_DisabledStartsNoThread) {
  ParamValues p = Rig::Defaults();
  p.disable = 1;
  Rig r(64, p);
  ASSERT_EQ(r.ctrl.Start(), 0);
  EXPECT_EQ(r.kernel.events.size(), 4U);
  EXPECT_FALSE(r.thread.running());
}

struct UnwindCase {
  std::string fail;
  Events want;
  friend void PrintTo(const UnwindCase& c, std::ostream* os) { *os << c.fail; }
};

class StartUnwind : public ::testing::TestWithParam<UnwindCase> {};

TEST_P(StartUnwind, S9_FailureUnwindsEarlierStepsInReverse) {
  Rig r(64);
  const UnwindCase& c = GetParam();
  int want_rc = ENOMEM;
  if (c.fail == "thread") {
    r.thread.fail_errno = EAGAIN;
    want_rc = EAGAIN;
  } else {
    r.kernel.fail_step = c.fail;
  }
  EXPECT_EQ(r.ctrl.Start(), want_rc);
  EXPECT_EQ(r.kernel.events, c.want);
  EXPECT_FALSE(r.thread.running());
  EXPECT_EQ(r.kernel.oom, nullptr);
  EXPECT_EQ(r.kernel.reboot, nullptr);
  EXPECT_EQ(r.kernel.memory, nullptr);
  EXPECT_EQ(r.kernel.files, nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, StartUnwind,
    ::testing::Values(
        UnwindCase{"oom", {"register oom failed"}},
        UnwindCase{"reboot", {"register oom", "register reboot failed", "unregister oom"}},
        UnwindCase{"attributes",
                   {"register oom", "register reboot", "register attributes failed", "unregister reboot",
                    "unregister oom"}},
        UnwindCase{"memory",
                   {"register oom", "register reboot", "register attributes", "register memory failed",
                    "unregister attributes", "unregister reboot", "unregister oom"}},
        UnwindCase{"thread",
                   {"register oom", "register reboot", "register attributes", "register memory",
                    "unregister memory", "unregister attributes", "unregister reboot", "unregister oom"}}),
    [](const auto& info) { return info.param.fail; });

TEST(Stop, S10_StopsThreadUnregistersAndReturnsEveryPage) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 200 * 4096;
  r.Round();
  ASSERT_EQ(r.ctrl.loaned(), Pages(200));
  r.kernel.events.clear();
  r.ctrl.Stop();
  EXPECT_FALSE(r.thread.running());
  EXPECT_EQ(r.thread.stops, 1);
  EXPECT_EQ(r.kernel.events,
            (Events{"unregister oom", "unregister reboot", "unregister memory", "unregister attributes"}));
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_TRUE(r.hv.loaned.empty());
  EXPECT_EQ(r.mem.Totalram(), Pages(1024));
  EXPECT_EQ(r.mem.Count(FakeGuestMemory::State::kFree), 1024U);
}

TEST(Restart, S11_RestartStopsThreadAndReturnsEveryPage) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 50 * 4096;
  r.Round();
  ASSERT_EQ(r.ctrl.loaned(), Pages(50));
  r.kernel.reboot->OnReboot(RebootAction::kRestart);
  EXPECT_FALSE(r.thread.running());
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_TRUE(r.hv.loaned.empty());
  // A later stop does not stop the thread twice.
  r.ctrl.Stop();
  EXPECT_EQ(r.thread.stops, 1);
}

TEST(Restart, S11_HaltAndPowerOffAreIgnored) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.hv.mpp.loan_request = 50 * 4096;
  r.Round();
  r.kernel.reboot->OnReboot(RebootAction::kHalt);
  r.kernel.reboot->OnReboot(RebootAction::kPowerOff);
  EXPECT_TRUE(r.thread.running());
  EXPECT_EQ(r.ctrl.loaned(), Pages(50));
}

TEST(Restart, S11_DisableAfterRestartStillLeavesNothingLoaned) {
  Rig r(1024);
  ASSERT_EQ(r.ctrl.Start(), 0);
  r.kernel.reboot->OnReboot(RebootAction::kRestart);
  ASSERT_TRUE(r.ctrl.files().Write("disable", "1", Writer{true}).has_value());
  EXPECT_EQ(r.ctrl.loaned(), Pages(0));
  EXPECT_EQ(r.thread.stops, 1);
}

}  // namespace cmm::testing
