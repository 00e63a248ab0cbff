// `cmm vm run` beside `cmm hv`, as real processes (the words): a
// QEMU guest joins the pool with its kind, everywhere a partition appears
// (status, list), is ballooned by the policy, `cmm lparcfg` refuses it with
// a reason, runs a workload inside whose counters it reads back from the
// console, and SIGTERM powers it off, takes it out of the pool and exits 0.
#include <signal.h>

#include <cstdlib>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"

namespace cmm::testing {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t MiB = 1 << 20;

TEST(VmCli, AVmJoinsThePoolWithItsKindIsBalloonedAndLeavesCleanlyOnSigterm) {
  if (std::system("qemu-system-x86_64 --version >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no qemu-system-x86_64 (scripts/install-deps installs qemu-system-x86)";
  }
  TempDir dir;
  setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
  const std::string image = dir.path() + "/image";
  ASSERT_EQ(std::system((std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + image + " " + CMM_VM_WORKLOAD +
                         " >/dev/null")
                            .c_str()),
            0);
  auto status = [&] {
    const auto r = RunCmm(dir.path(), {"hv", "status", "--json"});
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
  };
  GuestProcess hv(dir.path(), {"--pool", "160M", "--period-ms", "500"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return !status().empty(); })) << hv.err();

  GuestProcess vm(dir.path(),
                  {"run", "web1", "--mem", "256M", "--kernel", image + "/vmlinuz", "--initrd", image + "/initrd.img",
                   "--grace", "1", "--workload", "hog:48M:16M", "--workload", "cache:16M"},
                  "vm", "vm");
  int qemu_pid = 0;
  ASSERT_TRUE(WaitUntil([&] { return status()["partitions"].size() == 1; }, 30s)) << vm.out() << vm.err();
  nlohmann::json m = status()["partitions"][0];
  qemu_pid = m["pid"];
  EXPECT_EQ(m["kind"], "vm");
  EXPECT_EQ(m["backing_source"], "memfd");
  EXPECT_EQ(m["ram_bytes"], 256 * MiB);
  // The banner says which accelerator and why.
  ASSERT_TRUE(WaitUntil([&] { return vm.out().find("vm web1: QEMU") != std::string::npos; }));
  EXPECT_TRUE(vm.out().find("under TCG (") != std::string::npos || vm.out().find("under KVM (") != std::string::npos)
      << vm.out();

  // 256 MiB on a 160 MiB pool: once the guest reports its free memory, the
  // policy asks for the excess and the guest's balloon gives it.
  EXPECT_TRUE(WaitUntil([&] { return status()["partitions"][0]["loaned_bytes"].get<uint64_t>() >= 90 * MiB; }, 90s))
      << status().dump(2) << vm.out();

  const auto list = RunCmm(dir.path(), {"list"});
  EXPECT_NE(list.out.find("web1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(" vm "), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("256 MiB"), std::string::npos) << list.out;
  const auto listed = nlohmann::json::parse(RunCmm(dir.path(), {"list", "--json"}).out);
  ASSERT_EQ(listed.size(), 1U) << listed.dump(2);
  EXPECT_EQ(listed[0]["name"], "web1");
  EXPECT_EQ(listed[0]["kind"], "vm");
  EXPECT_EQ(listed[0]["ram_bytes"], 256 * MiB);
  const auto text = RunCmm(dir.path(), {"hv", "status"});
  EXPECT_NE(text.out.find("0 partitions and 1 VM with 256 MiB of RAM"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("backing from memfd, QEMU's own"), std::string::npos) << text.out;
  const auto lpar = RunCmm(dir.path(), {"lparcfg", "web1"});
  EXPECT_EQ(lpar.code, 1);
  EXPECT_NE(lpar.err.find("web1 is a QEMU VM, not a cmm partition"), std::string::npos) << lpar.err;

  // The guest workload runs inside and reports on the console.
  EXPECT_TRUE(WaitUntil([&] { return Slurp(dir.path() + "/vm-web1/serial.log").find("held=64M") != std::string::npos; },
                        60s))
      << Slurp(dir.path() + "/vm-web1/serial.log");

  EXPECT_EQ(vm.Stop(SIGTERM), 0) << vm.out() << vm.err();
  EXPECT_NE(vm.out().find("vm web1: workload: running"), std::string::npos) << vm.out();
  EXPECT_NE(vm.out().find("integrity_errors=0"), std::string::npos) << vm.out();
  EXPECT_NE(vm.out().find("vm web1: SIGTERM received; powering off"), std::string::npos) << vm.out();
  EXPECT_NE(vm.out().find("vm web1: stopped; it has left the pool"), std::string::npos) << vm.out();
  EXPECT_TRUE(WaitUntil([&] { return status()["partitions"].empty(); }, 5s));
  EXPECT_NE(kill(qemu_pid, 0), 0);  // QEMU is gone
}

}  // namespace
}  // namespace cmm::testing
