// A restart loses no member and no term (the words): kill -9 of
// `cmm hv` with two `cmm vm run` VMs (real QEMU guests, TCG, 192 MiB each)
// and a partition, each with terms set by `cmm hv set`; the hypervisor
// started again has all three back with their terms, with nobody's help.
// Without its state, it has them back too: each `cmm vm run` registers its
// VM again. And a second `cmm vm run` of a running name leaves the first
// one's folder as it was. Each QEMU is a child of its `cmm vm run` and dies with it.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"

namespace cmm::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
constexpr uint64_t MiB = 1 << 20;

class Restart : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("qemu-system-x86_64 --version >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "no qemu-system-x86_64 (scripts/install-deps installs qemu-system-x86)";
    }
    setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
    image = dir.path() + "/image";
    ASSERT_EQ(std::system((std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + image + " " + CMM_VM_WORKLOAD +
                           " >/dev/null")
                              .c_str()),
              0);
  }
  json Members() {
    const auto r = RunCmm(dir.path(), {"hv", "status", "--json"});
    if (r.code != 0) return json{};
    const json s = json::parse(r.out, nullptr, false);
    json out = json::object();
    if (s.is_object() && s.contains("partitions")) {
      for (const auto& m : s["partitions"]) out[m["name"].get<std::string>()] = m;
    }
    return out;
  }
  std::vector<std::string> VmArgs(const std::string& name) {
    return {"run", name, "--mem", "192M", "--kernel", image + "/vmlinuz", "--initrd", image + "/initrd.img",
            "--grace", "1", "--accel", "tcg"};
  }
  TempDir dir;
  std::string image;
};

TEST_F(Restart, KilledHypervisorTakesBackTwoVmsAndAPartitionWithTheirTermsByItself) {
  const std::vector<std::string> hv_args = {"--pool", "640M", "--period-ms", "500"};
  auto hv = std::make_unique<GuestProcess>(dir.path(), hv_args, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return Members().is_object(); })) << hv->err();
  GuestProcess p1(dir.path(), {"--name", "p1", "--mem", "32M"}, "guest", "p1");
  GuestProcess vm1(dir.path(), VmArgs("vm1"), "vm", "vm1");
  GuestProcess vm2(dir.path(), VmArgs("vm2"), "vm", "vm2");
  ASSERT_TRUE(WaitUntil([&] { return Members().size() == 3; }, 60s)) << vm1.err() << vm2.err() << Members().dump();

  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", "vm1", "--weight", "9", "--min", "96M"}).code, 0);
  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", "vm2", "--weight", "3", "--max", "160M"}).code, 0);
  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", "p1", "--weight", "5"}).code, 0);
  const int qemu1 = Members()["vm1"]["pid"];

  // A second `cmm vm run vm1` while vm1 runs: refused before anything is
  // touched; the running VM's sockets are the same files as before.
  struct stat before {}, after {};
  ASSERT_EQ(stat((dir.path() + "/vm-vm1/qmp.sock").c_str(), &before), 0);
  std::vector<std::string> second = VmArgs("vm1");
  second.insert(second.begin(), "vm");
  const auto refused = RunCmm(dir.path(), second);
  EXPECT_EQ(refused.code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("vm vm1 is already running"), std::string::npos) << refused.err;
  ASSERT_EQ(stat((dir.path() + "/vm-vm1/qmp.sock").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(Members()["vm1"]["pid"], qemu1);

  // kill -9, then the same command again.
  ASSERT_EQ(hv->Stop(SIGKILL), -1);
  const auto killed_at = std::chrono::steady_clock::now();
  hv = std::make_unique<GuestProcess>(dir.path(), hv_args, "hv", "hv2");
  ASSERT_TRUE(WaitUntil([&] { return Members().size() == 3; }, 30s)) << hv->err() << Members().dump();
  const auto back_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count();
  std::printf("restart: all three members back %lld ms after the kill\n", static_cast<long long>(back_ms));
  const json m = Members();
  EXPECT_EQ(m["vm1"]["weight"], 9);
  EXPECT_EQ(m["vm1"]["min_bytes"], 96 * MiB);
  EXPECT_EQ(m["vm1"]["pid"], qemu1);  // the same QEMU, attached again
  EXPECT_EQ(m["vm2"]["weight"], 3);
  EXPECT_EQ(m["vm2"]["max_bytes"], 160 * MiB);
  EXPECT_EQ(m["p1"]["weight"], 5);
  EXPECT_NE(hv->err().find("vm vm1: attached again after the restart"), std::string::npos) << hv->err();

  // A hypervisor that comes back without its state: each `cmm vm run`
  // notices and registers its VM again, as partitions do.
  ASSERT_EQ(hv->Stop(SIGKILL), -1);
  ASSERT_EQ(std::remove((dir.path() + "/hv.state").c_str()), 0);
  hv = std::make_unique<GuestProcess>(dir.path(), hv_args, "hv", "hv3");
  ASSERT_TRUE(WaitUntil([&] { return Members().size() == 3; }, 30s)) << hv->err() << Members().dump();
  EXPECT_TRUE(WaitUntil([&] { return vm1.out().find("vm vm1: back in the pool") != std::string::npos; }))
      << vm1.out();
  EXPECT_EQ(Members()["vm1"]["pid"], qemu1);

  EXPECT_EQ(vm1.Stop(SIGTERM), 0) << vm1.out() << vm1.err();
  EXPECT_EQ(vm2.Stop(SIGTERM), 0) << vm2.out() << vm2.err();
  EXPECT_NE(kill(qemu1, 0), 0);
}

}  // namespace
}  // namespace cmm::testing
