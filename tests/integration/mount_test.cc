// `cmm mount` (issue: "the kernel's file tree, mounted"): a partition's
// files under a FUSE mount in a temporary directory, used with plain
// cat/echo from bash, every file and every error as the kernel's.
#include <grp.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <tuple>

#include "process.h"

namespace cmm::testing {
namespace {

// Runs `script` with bash; stdout and stderr captured.
RunResult Bash(const std::string& dir, const std::string& script) {
  static int seq = 0;
  const std::string out = dir + "/sh" + std::to_string(++seq) + ".out";
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open((out + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    execl("/bin/bash", "bash", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(out), Slurp(out + ".err")};
}

bool Mounted(const std::string& dir) { return Slurp("/proc/mounts").find(" " + dir + " ") != std::string::npos; }

class Mount : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
    mnt = dir.path() + "/mnt";
    std::filesystem::create_directory(mnt);
    guest = std::make_unique<GuestProcess>(
        dir.path(), std::vector<std::string>{"--simulate", "--name", "w", "--mem", "256M", "--param", "min_mem_mb=64"});
    ASSERT_TRUE(WaitUntil([&] { return RunCmm(dir.path(), {"status", "w"}).code == 0; })) << guest->err();
    mount = std::make_unique<GuestProcess>(dir.path(), std::vector<std::string>{"w", mnt}, "mount", "mount");
    ASSERT_TRUE(WaitUntil([&] {
      return mount->out().find("mounted at") != std::string::npos || mount->err().find("cmm mount") != std::string::npos;
    }));
    if (mount->err().find("cannot mount") != std::string::npos) {
      GTEST_SKIP() << "FUSE is not available here: " << mount->err();
    }
    ASSERT_TRUE(Mounted(mnt)) << mount->out() << mount->err();
  }
  void TearDown() override {
    if (mount) mount->Stop();
  }
  RunResult Sh(const std::string& script) { return Bash(dir.path(), "cd " + mnt + " && " + script); }

  TempDir dir;
  std::string mnt;
  std::unique_ptr<GuestProcess> guest, mount;
};

constexpr const char* kDev = "sys/devices/system/cmm/cmm0";
constexpr const char* kPar = "sys/module/cmm/parameters";

TEST_F(Mount, TheTreeHasTheKernelsFilesWithTheirModes) {
  const auto ls = Sh(std::string("ls -l ") + kDev + " " + kPar + " proc proc/ppc64");
  ASSERT_EQ(ls.code, 0) << ls.err;
  for (const char* line : {"-r--r--r-- 1 root root 4096", " loaned_kb\n", " loaned_target_kb\n",
                           "-rw-r--r-- 1 root root 4096", " oom_freed_kb\n", " simulate_loan_target_kb\n", " delay\n",
                           " disable\n", " hotplug_delay\n", " min_mem_mb\n", " oom_kb\n", " debug\n", " simulate\n",
                           " meminfo\n", " lparcfg\n"}) {
    EXPECT_NE(ls.out.find(line), std::string::npos) << line << " in\n" << ls.out;
  }
}

TEST_F(Mount, S1_S7_AttributesReadAndWriteAsTheKernelsDo) {
  EXPECT_EQ(Sh(std::string("cat ") + kDev + "/loaned_kb").out, "0\n");
  ASSERT_EQ(Sh(std::string("echo 102400 > ") + kDev + "/simulate_loan_target_kb").code, 0);
  EXPECT_EQ(Sh(std::string("cat ") + kDev + "/simulate_loan_target_kb").out, "19000\n");  // hexadecimal
  EXPECT_TRUE(WaitUntil([&] { return Sh(std::string("cat ") + kDev + "/loaned_kb").out == "102400\n"; }));
  EXPECT_EQ(Sh(std::string("cat ") + kDev + "/loaned_target_kb").out, "102400\n");

  const auto bad = Sh(std::string("echo 5 > ") + kDev + "/oom_freed_kb");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("write error: Bad message"), std::string::npos) << bad.err;
  EXPECT_EQ(Sh(std::string("echo 0 > ") + kDev + "/oom_freed_kb").code, 0);
  const auto ro = Sh(std::string("echo 5 > ") + kDev + "/loaned_kb");
  EXPECT_NE(ro.err.find("Permission denied"), std::string::npos) << ro.err;
}

TEST_F(Mount, S1_S8_ParametersAndDisable) {
  EXPECT_EQ(Sh(std::string("cat ") + kPar + "/simulate").out, "Y\n");
  EXPECT_NE(Sh(std::string("echo N > ") + kPar + "/simulate").err.find("Permission denied"), std::string::npos);
  EXPECT_EQ(Sh(std::string("cat ") + kPar + "/delay").out, "1\n");
  EXPECT_NE(Sh(std::string("echo soon > ") + kPar + "/delay").err.find("Invalid argument"), std::string::npos);
  // A number too large for a uint: ERANGE, as kstrtouint; the value stays.
  EXPECT_NE(Sh(std::string("echo 4294967296 > ") + kPar + "/delay").err.find("Numerical result out of range"),
            std::string::npos);
  EXPECT_EQ(Sh(std::string("cat ") + kPar + "/delay").out, "1\n");
  ASSERT_EQ(Sh(std::string("echo 102400 > ") + kDev + "/simulate_loan_target_kb").code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Sh(std::string("cat ") + kDev + "/loaned_kb").out == "102400\n"; }));
  ASSERT_EQ(Sh(std::string("echo 1 > ") + kPar + "/disable").code, 0);  // S8: every page back
  EXPECT_EQ(Sh(std::string("cat ") + kDev + "/loaned_kb").out, "0\n");
}

TEST_F(Mount, EveryParameterReadsAndTakesAValueLikeTheKernels) {
  // name, a value to write, what reads back
  const std::vector<std::tuple<std::string, std::string, std::string>> params = {
      {"delay", "2", "2\n"},          {"hotplug_delay", "7", "7\n"}, {"oom_kb", "0x800", "2048\n"},
      {"min_mem_mb", "96", "96\n"},   {"debug", "1", "1\n"},         {"disable", "0", "0\n"}};
  for (const auto& [name, value, shown] : params) {
    const std::string path = std::string(kPar) + "/" + name;
    const auto w = Sh("echo " + value + " > " + path);
    EXPECT_EQ(w.code, 0) << name << ": " << w.err;
    EXPECT_EQ(Sh("cat " + path).out, shown) << name;
    // disable reads digits from the start (S8: "-5x" is 0); 2 is refused.
    const std::string bad = name == "disable" ? "2" : "-5x";
    EXPECT_NE(Sh("echo " + bad + " > " + path).err.find("Invalid argument"), std::string::npos) << name;
  }
}

// The kernel's permission rule for its files: a writer that is not root
// gets EACCES from a root-owned 0644 file (it may still read it). A child
// drops to nobody and tries both.
TEST_F(Mount, S1_ANonRootWriterOfARootOwned0644FileGetsEacces) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, to drop privileges in a child";
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);  // nobody may walk to the mount
  const std::string file = mnt + "/" + kPar + "/delay";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Only async-signal-safe calls here: the test process has threads.
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(90);
    const int r = open(file.c_str(), O_RDONLY);
    if (r < 0) _exit(91);  // it may read
    char buf[16];
    if (read(r, buf, sizeof buf) != 2 || buf[0] != '1') _exit(92);
    close(r);
    const int w = open(file.c_str(), O_WRONLY);
    if (w >= 0) _exit(93);  // it must not write
    _exit(errno == EACCES ? 0 : 94);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "90: could not drop privileges, 91/92: could not read, 93: could write, "
                                       "94: another errno than EACCES";
  // Root still writes it.
  EXPECT_EQ(Sh(std::string("echo 2 > ") + kPar + "/delay").code, 0);
  EXPECT_EQ(Sh(std::string("cat ") + kPar + "/delay").out, "2\n");
}

TEST_F(Mount, ProcFilesShowTheGuestsView) {
  EXPECT_EQ(Sh("cat proc/ppc64/lparcfg").out, "lparcfg 1.9\ncmo_enabled=0\n");
  ASSERT_EQ(Sh(std::string("echo 102400 > ") + kDev + "/simulate_loan_target_kb").code, 0);
  ASSERT_TRUE(WaitUntil([&] { return Sh(std::string("cat ") + kDev + "/loaned_kb").out == "102400\n"; }));
  const auto meminfo = Sh("cat proc/meminfo").out;
  EXPECT_EQ(meminfo.rfind("MemTotal:         159744 kB\nMemFree:", 0), 0U) << meminfo;  // 256 MiB - 100 MiB loaned
  EXPECT_NE(meminfo.find("\nCached:"), std::string::npos) << meminfo;
  EXPECT_NE(Sh("echo 1 > proc/meminfo").err.find("Permission denied"), std::string::npos);
  EXPECT_NE(Sh("cat proc/nothing").err.find("No such file or directory"), std::string::npos);
}

TEST_F(Mount, SigtermUnmounts) {
  EXPECT_EQ(mount->Stop(SIGTERM), 0) << mount->err();
  EXPECT_FALSE(Mounted(mnt));
  mount.reset();
}

}  // namespace
}  // namespace cmm::testing
