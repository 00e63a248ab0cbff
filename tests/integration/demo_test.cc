// `cmm demo` for real (issue: "the main job"): a hypervisor and four
// partitions as processes, lines instead of a live view when stdout is not
// a terminal, a summary with 0 integrity errors, exit 0, nothing left
// behind; Ctrl-C ends it early the same way.
#include <glob.h>

#include <cstdlib>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "process.h"

namespace cmm::testing {
namespace {

// The demo's own temporary directories under `dir` (it honours $TMPDIR).
std::vector<std::string> DemoDirs(const std::string& dir) {
  glob_t g{};
  std::vector<std::string> out;
  if (glob((dir + "/cmm-demo-*").c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

TEST(Demo, FourPartitionsShareAPoolAThirdOfTheirSizeWithZeroIntegrityErrors) {
  TempDir dir;
  setenv("TMPDIR", dir.path().c_str(), 1);
  const auto r = RunCmm(dir.path(), {"demo", "--pool", "256M", "--duration", "8"});
  unsetenv("TMPDIR");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  for (const char* text : {"a pool of 256 MiB shared by 4 partitions of 192 MiB (3.0x overcommit)",
                           "web1     bursty web server", "db1      database, steady cache", "batch1   nightly batch job",
                           "idle1    idle",
                           "at their peaks the workloads hold 195 MiB (76% of the pool, page caches not counted)\n",
                           "] pool 256 MiB in use", "summary after",
                           "partitions' RAM / pool                 768 MiB / 256 MiB = 3.00x",
                           "integrity errors                       0",
                           "integrity held; every partition returned its pages and exited"}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\nin:\n" << r.out;
  }
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos) << "no terminal codes when stdout is a file";
  EXPECT_TRUE(DemoDirs(dir.path()).empty()) << "the demo's temporary directory is removed";
}

// Issue 13: a newcomer starts the demo and, in a browser at the address
// it prints, watches the pool move.
TEST(Demo, PrintsWhereThePoolsWebPageIsAndServesItWhileItRuns) {
  TempDir dir;
  setenv("TMPDIR", dir.path().c_str(), 1);
  GuestProcess demo(dir.path(), {"--pool", "256M", "--duration", "6"}, "demo", "demo");
  unsetenv("TMPDIR");
  std::smatch m;
  std::string out;
  ASSERT_TRUE(WaitUntil([&] {
    out = demo.out();
    return std::regex_search(out, m, std::regex("watch the pool in a browser: http://127.0.0.1:([0-9]+)/\n"));
  })) << demo.out() << demo.err();
  httplib::Client http("127.0.0.1", std::stoi(m[1]));
  nlohmann::json live;
  ASSERT_TRUE(WaitUntil([&] {
    const auto r = http.Get("/live");
    if (!r || r->status != 200) return false;
    live = nlohmann::json::parse(r->body);
    return live["status"]["partitions"].size() == 4 && live["samples"]["t"].size() >= 2;
  })) << live.dump(1);
  const auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("<title>cmm pool</title>"), std::string::npos);
  // Signal 0 sends nothing: this waits for the demo to end by itself.
  EXPECT_EQ(demo.Stop(0), 0) << demo.out() << demo.err();
}

// The words: `cmm demo --mixed` puts two VMs and two partitions in
// one pool; the VMs' workloads run inside real guests.
TEST(Demo, MixedPutsTwoQemuGuestsAndTwoPartitionsInOnePoolWithZeroIntegrityErrors) {
  if (std::system("qemu-system-x86_64 --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no qemu-system-x86_64";
  TempDir dir;
  const std::string image = dir.path() + "/image";
  ASSERT_EQ(std::system((std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + image + " " + CMM_VM_WORKLOAD +
                         " >/dev/null")
                            .c_str()),
            0);
  setenv("TMPDIR", dir.path().c_str(), 1);
  const auto r = RunCmm(dir.path(),
                        {"demo", "--mixed", "--image", image, "--pool", "512M", "--duration", "10", "--accel", "tcg"},
                        std::chrono::seconds(100));
  unsetenv("TMPDIR");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  for (const char* text : {"a pool of 512 MiB shared by 4 partitions of 256 MiB (2.0x overcommit)",
                           "web1     bursty web server (QEMU VM)", "db1      database, steady cache (QEMU VM)",
                           "batch1   nightly batch job: ", "summary after", "integrity errors                       0",
                           "guest OOM kills (from the VMs' consoles): "}) {
    EXPECT_NE(r.out.find(text), std::string::npos) << text << "\nin:\n" << r.out;
  }
  EXPECT_TRUE(DemoDirs(dir.path()).empty()) << "the demo's temporary directory is removed";
}

TEST(Demo, VmsWithoutAnImageIsAUsageErrorThatSaysHowToBuildOne) {
  TempDir dir;
  unsetenv("CMM_GUEST_IMAGE");
  const auto r = RunCmm(dir.path(), {"demo", "--vms"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("scripts/make-guest-image DIR"), std::string::npos) << r.err;
}

TEST(Demo, CtrlCStopsEverythingInOrder) {
  TempDir dir;
  setenv("TMPDIR", dir.path().c_str(), 1);
  GuestProcess demo(dir.path(), {"--pool", "256M", "--duration", "60"}, "demo", "demo");
  unsetenv("TMPDIR");
  ASSERT_TRUE(WaitUntil([&] { return demo.out().find("] pool 256 MiB") != std::string::npos; },
                        std::chrono::seconds(30)))
      << demo.out() << demo.err();
  EXPECT_EQ(demo.Stop(SIGINT), 0) << demo.out() << demo.err();
  EXPECT_NE(demo.out().find("integrity held"), std::string::npos) << demo.out();
  EXPECT_TRUE(DemoDirs(dir.path()).empty());
}

TEST(Demo, BadFlagsAreUsageErrors) {
  TempDir dir;
  EXPECT_EQ(RunCmm(dir.path(), {"demo", "--pool", "lots"}).code, 2);
  const auto small = RunCmm(dir.path(), {"demo", "--pool", "64M"});
  EXPECT_EQ(small.code, 2);
  EXPECT_NE(small.err.find("give a larger --pool"), std::string::npos) << small.err;
  EXPECT_EQ(RunCmm(dir.path(), {"demo", "--partitions", "0"}).code, 2);
}

}  // namespace
}  // namespace cmm::testing
