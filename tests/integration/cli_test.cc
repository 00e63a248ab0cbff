// The cmm binary for real: a simulate-mode partition as a process, driven
// through its control socket by the cmm subcommands.
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ctl/client.h"
#include "process.h"

namespace cmm::testing {

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { setenv("CMM_RUN_DIR", dir.path().c_str(), 1); }
  RunResult Cmm(std::vector<std::string> args) { return RunCmm(dir.path(), std::move(args)); }
  std::string Sock(const std::string& name) { return dir.path() + "/" + name + ".sock"; }
  bool Up(const std::string& name) {
    return WaitUntil([&] { return Cmm({"status", name}).code == 0; });
  }
  nlohmann::json Status(const std::string& name) {
    return nlohmann::json::parse(Cmm({"status", name, "--json"}).out);
  }
  TempDir dir;
};

TEST_F(Cli, S1_GuestSimulateFollowsTheTargetAndStopsCleanly) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "web1", "--mem", "256M", "--param", "min_mem_mb=64"});
  ASSERT_TRUE(Up("web1")) << g.err();
  struct stat st {};
  ASSERT_EQ(stat(Sock("web1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  ASSERT_EQ(Cmm({"set", "web1", "simulate_loan_target_kb", "102400"}).code, 0);
  EXPECT_EQ(Cmm({"get", "web1", "simulate_loan_target_kb"}).out, "19000\n");  // hex, as the kernel shows it
  ASSERT_TRUE(WaitUntil([&] { return Cmm({"get", "web1", "loaned_kb"}).out == "102400\n"; }));
  EXPECT_EQ(Cmm({"get", "web1", "loaned_target_kb"}).out, "102400\n");
  const auto s = Status("web1");
  EXPECT_EQ(s["loaned_pages"], 25600);
  EXPECT_EQ(s["totalram_pages"], 65536 - 25600);
  EXPECT_EQ(s["integrity_errors"], 0);

  // Asking for more than min_mem allows: clamped to 256M - 64M.
  ASSERT_EQ(Cmm({"set", "web1", "simulate_loan_target_kb", "0x100000"}).code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Cmm({"get", "web1", "loaned_kb"}).out == "196608\n"; }));
  // No hypervisor: lparcfg says CMO is off.
  EXPECT_EQ(Cmm({"lparcfg", "web1"}).out, "lparcfg 1.9\ncmo_enabled=0\n");

  EXPECT_EQ(g.Stop(SIGTERM), 0);
  EXPECT_NE(g.out().find("0 still loaned"), std::string::npos) << g.out();
  EXPECT_NE(stat(Sock("web1").c_str(), &st), 0);  // socket removed
}

TEST_F(Cli, S10_SigintReturnsEveryPageAndExitsZero) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "db1", "--mem", "128M", "--param", "min_mem_mb=0"});
  ASSERT_TRUE(Up("db1"));
  ASSERT_EQ(Cmm({"set", "db1", "simulate_loan_target_kb", "40960"}).code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Status("db1")["loaned_pages"] == 10240; }));
  EXPECT_EQ(g.Stop(SIGINT), 0);
  EXPECT_NE(g.out().find("SIGINT received, 10240 loaned pages returned, 0 still loaned"), std::string::npos)
      << g.out();
}

TEST_F(Cli, S1_S7_WriteErrorsPrintTheErrnoAndExitOne) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "p", "--mem", "64M"});
  ASSERT_TRUE(Up("p"));
  auto r = Cmm({"set", "p", "oom_freed_kb", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EBADMSG"), std::string::npos) << r.err;
  r = Cmm({"set", "p", "loaned_kb", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EACCES"), std::string::npos) << r.err;
  r = Cmm({"set", "p", "simulate_loan_target_kb", "12k"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EINVAL"), std::string::npos) << r.err;
  r = Cmm({"param", "p", "simulate=N"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EACCES"), std::string::npos) << r.err;
  r = Cmm({"param", "p", "delay=4294967296"});  // S1: too large for a uint
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("ERANGE"), std::string::npos) << r.err;
  r = Cmm({"set", "p", "simulate_loan_target_kb", "18446744073709551616"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("ERANGE"), std::string::npos) << r.err;
  r = Cmm({"param", "p", "disable=2"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EINVAL"), std::string::npos) << r.err;
  // Every error is one line.
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  EXPECT_EQ(Cmm({"set", "p", "oom_freed_kb", "0"}).code, 0);  // the test runs as its own peer
}

TEST_F(Cli, S8_DisableThroughParamReturnsPagesAndStopsPolling) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "d", "--mem", "64M", "--param", "min_mem_mb=0"});
  ASSERT_TRUE(Up("d"));
  ASSERT_EQ(Cmm({"set", "d", "simulate_loan_target_kb", "8192"}).code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Status("d")["loaned_pages"] == 2048; }));
  ASSERT_EQ(Cmm({"param", "d", "disable=1"}).code, 0);
  EXPECT_EQ(Cmm({"param", "d", "disable"}).out, "1\n");
  auto s = Status("d");
  EXPECT_EQ(s["loaned_pages"], 0);
  EXPECT_EQ(s["polling"], false);
  ASSERT_EQ(Cmm({"param", "d", "disable=0"}).code, 0);
  EXPECT_TRUE(WaitUntil([&] { return Status("d")["loaned_pages"] == 2048; }));
  EXPECT_EQ(g.Stop(), 0);
}

TEST_F(Cli, ParamAndGetListEveryFile) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "l", "--mem", "64M", "--param", "delay=3"});
  ASSERT_TRUE(Up("l"));
  const auto params = Cmm({"param", "l"}).out;
  for (const char* k : {"delay", "hotplug_delay", "oom_kb", "min_mem_mb", "debug", "simulate", "disable"}) {
    EXPECT_NE(params.find(k), std::string::npos) << k;
  }
  EXPECT_EQ(Cmm({"param", "l", "delay"}).out, "3\n");
  const auto attrs = Cmm({"get", "l"}).out;
  for (const char* k : {"loaned_kb", "loaned_target_kb", "oom_freed_kb", "simulate_loan_target_kb"}) {
    EXPECT_NE(attrs.find(k), std::string::npos) << k;
  }
  const auto list = Cmm({"list"});
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find("l "), std::string::npos) << list.out;
  const auto watch = Cmm({"watch", "l", "--count", "2", "--interval", "0.1"});
  EXPECT_EQ(watch.code, 0);
  EXPECT_NE(watch.out.find("loaned"), std::string::npos);
}

TEST_F(Cli, S9_WithoutSimulateOrHypervisorRefusesWithEopnotsupp) {
  const auto r = Cmm({"guest", "--name", "nohv", "--mem", "64M"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("EOPNOTSUPP"), std::string::npos) << r.err;
}

TEST_F(Cli, UsageErrorsExitTwoAndMissingNameListsPartitions) {
  EXPECT_EQ(Cmm({"guest", "--simulate", "--name", "x", "--mem", "lots"}).code, 2);
  EXPECT_EQ(Cmm({"guest", "--simulate", "--name", "x", "--page-size", "8K"}).code, 2);
  const auto bad_param = Cmm({"guest", "--simulate", "--name", "x", "--param", "nope=1"});
  EXPECT_EQ(bad_param.code, 2);
  EXPECT_NE(bad_param.err.find("known: delay, hotplug_delay, oom_kb, min_mem_mb, debug, simulate, disable"),
            std::string::npos)
      << bad_param.err;
  const auto unknown = Cmm({"nosuchcommand"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_EQ(std::count(unknown.err.begin(), unknown.err.end(), '\n'), 1) << unknown.err;
  EXPECT_NE(unknown.err.find("no subcommand named nosuchcommand; one of: demo, guest,"), std::string::npos)
      << unknown.err;
  const auto no_name = Cmm({"guest", "--simulate"});
  EXPECT_EQ(no_name.code, 2);
  EXPECT_NE(no_name.err.find("--name"), std::string::npos) << no_name.err;
  // A flag a subcommand refuses names that subcommand and its own help.
  EXPECT_EQ(no_name.err.rfind("cmm guest: ", 0), 0U) << no_name.err;
  EXPECT_NE(no_name.err.find("see `cmm guest --help`"), std::string::npos) << no_name.err;
  const auto weight = Cmm({"hv", "set", "x", "--weight", "300"});
  EXPECT_EQ(weight.code, 2);
  EXPECT_EQ(weight.err.rfind("cmm hv set: --weight", 0), 0U) << weight.err;
  GuestProcess g(dir.path(), {"--simulate", "--name", "named", "--mem", "64M"});
  ASSERT_TRUE(Up("named"));
  const auto r = Cmm({"get"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("running: named"), std::string::npos) << r.err;
  const auto missing = Cmm({"status", "ghost"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("no partition ghost is running"), std::string::npos) << missing.err;
}

TEST_F(Cli, SecondPartitionWithTheSameNameIsRefused) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "dup", "--mem", "64M"});
  ASSERT_TRUE(Up("dup"));
  const auto r = Cmm({"guest", "--simulate", "--name", "dup", "--mem", "64M"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  EXPECT_EQ(Cmm({"status", "dup"}).code, 0);  // the first one is untouched
}

// S7: "administrator" is the peer's uid 0 (SO_PEERCRED). A forked child
// drops to another uid and gets EPERM where root succeeds.
TEST_F(Cli, S7_NonRootPeerGetsEpermOnOomFreedKb) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to drop to another uid";
  GuestProcess g(dir.path(), {"--simulate", "--name", "perm", "--mem", "64M"});
  ASSERT_TRUE(Up("perm"));
  const std::string sock = Sock("perm");
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(sock.c_str(), 0666), 0);  // let the other uid reach the socket
  const pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    const nlohmann::json req = {{"op", "write"}, {"group", "device"}, {"file", "oom_freed_kb"}, {"text", "0"}};
    auto reply = ctl::Call(sock, req);
    if (!reply) _exit(11);
    if ((*reply)["ok"].get<bool>()) _exit(12);
    _exit((*reply)["error"] == "EPERM" ? 0 : 13);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const nlohmann::json req = {{"op", "write"}, {"group", "device"}, {"file", "oom_freed_kb"}, {"text", "0"}};
  auto root = ctl::Call(sock, req);
  ASSERT_TRUE(root.has_value());
  EXPECT_TRUE((*root)["ok"].get<bool>());
}

TEST_F(Cli, MalformedControlRequestsGetAnErrorReply) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "m", "--mem", "64M"});
  ASSERT_TRUE(Up("m"));
  auto r = ctl::Call(Sock("m"), {{"op", "explode"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE((*r)["ok"].get<bool>());
  EXPECT_EQ((*r)["error"], "EINVAL");
  r = ctl::Call(Sock("m"), {{"op", "write"}, {"group", "device"}, {"file", 5}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["error"], "EINVAL");
  EXPECT_EQ(Cmm({"status", "m"}).code, 0);  // still serving
}

}  // namespace cmm::testing

namespace cmm::testing {

TEST_F(Cli, S2_SixtyFourKPagesConvertKbToWholePages) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "big", "--mem", "64M", "--page-size", "64K", "--param",
                              "min_mem_mb=0"});
  ASSERT_TRUE(Up("big"));
  ASSERT_EQ(Cmm({"set", "big", "simulate_loan_target_kb", "1100"}).code, 0);  // 17 pages and a bit
  ASSERT_TRUE(WaitUntil([&] { return Cmm({"get", "big", "loaned_kb"}).out == "1088\n"; }));
  const auto s = Status("big");
  EXPECT_EQ(s["page_size"], 65536);
  EXPECT_EQ(s["loaned_pages"], 17);
  EXPECT_EQ(s["totalram_pages"], 1024 - 17);
  EXPECT_EQ(g.Stop(), 0);
}

}  // namespace cmm::testing

namespace cmm::testing {

TEST_F(Cli, MemAddHotAddsBlocksUpToTheMaximum) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "hp", "--mem", "64M", "--max-mem", "192M"});
  ASSERT_TRUE(Up("hp"));
  auto s = Status("hp");
  EXPECT_EQ(s["blocks_online"], 1);
  EXPECT_EQ(s["blocks_total"], 3);
  const auto r = Cmm({"mem", "add", "hp", "64M"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "partition hp: added 64 MiB (block 1); 2 blocks online\n");
  s = Status("hp");
  EXPECT_EQ(s["totalram_pages"], 32768);
  EXPECT_NE(Cmm({"status", "hp"}).out.find("2 of 3 online"), std::string::npos);
  const auto over = Cmm({"mem", "add", "hp", "128M"});
  EXPECT_EQ(over.code, 1);
  EXPECT_NE(over.err.find("only 1 of 3 memory blocks are offline"), std::string::npos) << over.err;
  EXPECT_EQ(Cmm({"mem", "add", "hp", "lots"}).code, 2);
  EXPECT_EQ(Cmm({"mem"}).code, 2);
  EXPECT_EQ(g.Stop(), 0);
}

}  // namespace cmm::testing

namespace cmm::testing {

TEST_F(Cli, RunDirectoryItCreatesIsForItsOwnerOnly) {
  const std::string run = dir.path() + "/run/cmm";
  setenv("CMM_RUN_DIR", run.c_str(), 1);
  GuestProcess g(dir.path(), {"--simulate", "--name", "own", "--mem", "64M"});
  ASSERT_TRUE(Up("own")) << g.err();
  struct stat st {};
  ASSERT_EQ(stat(run.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);
  EXPECT_EQ(g.Stop(), 0);
}

}  // namespace cmm::testing

namespace cmm::testing {

TEST_F(Cli, WorkloadsRunAndHotRemoveMigratesTheirPagesWithZeroIntegrityErrors) {
  GuestProcess g(dir.path(), {"--simulate", "--name", "wl", "--mem", "64M", "--max-mem", "96M", "--block", "16M",
                              "--workload", "hog:24M", "--workload", "unmovable:1M", "--workload", "cache:8M", "--param",
                              "min_mem_mb=0"});
  ASSERT_TRUE(Up("wl")) << g.err();
  ASSERT_TRUE(WaitUntil([&] {
    const auto s = Status("wl");
    return s["movable_pages"] == 6144 + 2048 && s["unmovable_pages"] == 256;
  }));
  ASSERT_EQ(Cmm({"mem", "add", "wl", "32M"}).code, 0);
  ASSERT_EQ(Cmm({"set", "wl", "simulate_loan_target_kb", "8192"}).code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Status("wl")["loaned_pages"] == 2048; }));

  // Where the pages are depends on timing; the status shows each block.
  int64_t pinned = -1, movable = -1;
  const auto before = Status("wl");
  for (const auto& b : before["blocks"]) {
    if (b["unmovable"] > 0) pinned = b["block"];
    if (b["unmovable"] == 0 && b["movable"] > 1000 && b["zone"] == "Normal") movable = b["block"];
  }
  ASSERT_GE(pinned, 0);
  ASSERT_GE(movable, 0);
  const uint64_t backing = before["backing_bytes"];

  // A block of hog and cache pages: they move, the touched memory goes back.
  auto r = Cmm({"mem", "remove", "wl", std::to_string(movable)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(fmt::format("partition wl: removed block {}: migrated ", movable)), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("migrated 0 movable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MiB returned to the host"), std::string::npos) << r.out;
  auto s = Status("wl");
  EXPECT_LE(s["backing_bytes"], backing);  // moved, not duplicated
  EXPECT_EQ(s["blocks_online"], 5);
  EXPECT_EQ(s["blocks"][movable]["state"], "offline");
  EXPECT_EQ(s["integrity_errors"], 0);
  EXPECT_EQ(s["workloads"].size(), 3U);

  // The block with the unmovable pages: cancelled, nothing lost.
  r = Cmm({"mem", "remove", "wl", std::to_string(pinned)});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("removal cancelled, nothing lost: 256 unmovable page(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(EBUSY)"), std::string::npos) << r.err;
  s = Status("wl");
  EXPECT_EQ(s["blocks_online"], 5);
  EXPECT_EQ(s["unmovable_pages"], 256);

  r = Cmm({"mem", "remove", "wl", "32M"});  // the two hot-added blocks, balloon pages in them
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("removed blocks 5, 4"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("and 0 balloon pages"), std::string::npos) << r.out;
  EXPECT_EQ(Status("wl")["loaned_pages"], 2048);
  EXPECT_EQ(Cmm({"mem", "remove", "wl", "9"}).code, 1);
  EXPECT_EQ(Cmm({"mem", "remove", "wl", "two"}).code, 2);
  const auto text = Cmm({"status", "wl"}).out;
  EXPECT_NE(text.find("integrity      0 errors"), std::string::npos) << text;
  EXPECT_NE(text.find("workload       hog:24M: holds 24 MiB of 24 MiB"), std::string::npos) << text;
  EXPECT_EQ(g.Stop(), 0);
  EXPECT_NE(g.out().find("0 integrity errors; stopped"), std::string::npos) << g.out();
}

TEST_F(Cli, BadWorkloadIsAUsageError) {
  const auto r = Cmm({"guest", "--simulate", "--name", "bad", "--workload", "hog:lots"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--workload workload \"hog:lots\": size \"lots\" is not a size"), std::string::npos) << r.err;
}

}  // namespace cmm::testing
