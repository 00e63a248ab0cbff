// libvirt's domains in the pool, for real (the words): `cmm hv
// --libvirt` beside a real libvirtd, with transient TCG domains booted from
// the project's guest image (256 MiB each, names with a per-run prefix,
// destroyed by the test that made them even when it fails). When nothing
// answers on qemu:///system (no systemd in CI), the harness starts
// virtlogd and libvirtd itself and stops what it started, by PID.
//
// One ctest test runs this whole binary: the daemons it may start are
// shared by its tests, never by another binary's.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../integration/process.h"
#include "members/libvirt/domain_xml.h"

namespace cmm::testing {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
constexpr uint64_t MiB = 1 << 20;

bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

pid_t PidIn(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  return in >> pid ? static_cast<pid_t>(pid) : 0;
}

// libvirt answering on qemu:///system, for the whole binary.
class Libvirtd : public ::testing::Environment {
 public:
  void SetUp() override {
    if (Sh("virsh -c qemu:///system version")) {
      usable_ = true;
      return;
    }
    if (!Sh("command -v libvirtd") || !Sh("command -v virtlogd")) {
      why_ = "libvirtd is not installed (scripts/install-deps test installs libvirt-daemon-system)";
      return;
    }
    std::filesystem::create_directories("/var/log/libvirt");
    if (!Sh("pgrep -x virtlogd")) {
      Sh("virtlogd -d");
      for (int i = 0; i < 50 && virtlogd_ == 0; ++i) {
        virtlogd_ = PidIn("/run/virtlogd.pid");
        std::this_thread::sleep_for(100ms);
      }
    }
    usable_ = StartLibvirtd();
    if (!usable_) why_ = "libvirtd did not answer on qemu:///system within 10 s";
  }
  // The daemon this harness started (0: it found one answering).
  static pid_t ours() { return libvirtd_; }
  static bool StartLibvirtd() {
    Sh("libvirtd -d");
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = Sh("virsh -c qemu:///system version");
      if (!up) std::this_thread::sleep_for(100ms);
    }
    libvirtd_ = PidIn("/run/libvirtd.pid");
    return up;
  }
  static void KillLibvirtd() {
    if (libvirtd_ <= 0) return;
    kill(libvirtd_, SIGKILL);
    for (int i = 0; i < 100 && kill(libvirtd_, 0) == 0; ++i) std::this_thread::sleep_for(50ms);
    libvirtd_ = 0;
  }
  void TearDown() override {
    for (pid_t pid : {libvirtd_, virtlogd_}) {  // only what this harness started
      if (pid <= 0) continue;
      kill(pid, SIGTERM);
      for (int i = 0; i < 100 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(50ms);
      if (kill(pid, 0) == 0) kill(pid, SIGKILL);
    }
  }
  static bool usable() { return usable_; }
  static const std::string& why() { return why_; }

 private:
  static inline bool usable_ = false;
  static inline std::string why_;
  static inline pid_t libvirtd_ = 0;
  pid_t virtlogd_ = 0;
};

class RealLibvirt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Libvirtd::usable()) GTEST_SKIP() << Libvirtd::why();
    setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
    // libvirt's QEMU runs as libvirt-qemu: what it reads must be reachable.
    chmod(dir.path().c_str(), 0755);
    image_ = dir.path() + "/image";
    ASSERT_TRUE(Sh(std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + image_));
    chmod(image_.c_str(), 0755);
    for (const char* f : {"/vmlinuz", "/initrd.img"}) chmod((image_ + f).c_str(), 0644);
  }
  void TearDown() override {
    for (const std::string& name : created_) Sh("virsh -c qemu:///system destroy " + name);
  }
  // A transient domain of `mib` MiB (TCG, direct kernel boot, memfd-backed
  // guest RAM), with a virtio balloon unless `balloon` is false.
  std::string Create(const std::string& suffix, int mib, bool balloon = true, const std::string& cmdline = "",
                     std::optional<hv::MemberSettings> terms = std::nullopt) {
    hv::DomainSpec spec;
    spec.name = fmt::format("cmmtest-{}-{}", getpid(), suffix);
    spec.mem_bytes = static_cast<uint64_t>(mib) * MiB;
    spec.kernel = image_ + "/vmlinuz";
    spec.initrd = image_ + "/initrd.img";
    spec.cmdline = "console=ttyS0 " + cmdline;
    spec.console_path = dir.path() + "/" + spec.name + ".console";
    spec.balloon = balloon;
    spec.terms = terms;
    const std::string& name = spec.name;
    const std::string xml = hv::DomainXml(spec);
    const std::string file = dir.path() + "/" + name + ".xml";
    std::ofstream(file) << xml;
    created_.push_back(name);
    EXPECT_TRUE(Sh("virsh -c qemu:///system create " + file)) << xml;
    return name;
  }
  json Members() {
    const auto r = RunCmm(dir.path(), {"hv", "status", "--json"});
    json out = json::object();
    if (r.code != 0) return out;
    const json s = json::parse(r.out, nullptr, false);
    if (!s.is_object() || !s.contains("partitions")) return out;
    for (const auto& m : s["partitions"]) out[m["name"].get<std::string>()] = m;
    return out;
  }
  TempDir dir;
  std::string image_;
  std::vector<std::string> created_;
};

TEST_F(RealLibvirt, TwoDomainsReachTheirTargetsAndTheirHostBackingFalls) {
  // Each guest first writes non-zero bytes over nearly all its memory and
  // frees them: the host backs it all, then the balloon takes it back.
  const std::string a = Create("a", 256, true, "cmm.touch=max");
  const std::string b = Create("b", 256, true, "cmm.touch=max");
  GuestProcess hv(dir.path(), {"--pool", "320M", "--period-ms", "500", "--libvirt"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return Members().size() == 2; }, 20s)) << hv.out() << hv.err();
  const auto list = RunCmm(dir.path(), {"list"});
  EXPECT_NE(list.out.find(" domain "), std::string::npos) << list.out;
  json m = Members();
  EXPECT_EQ(m[a]["kind"], "domain");
  EXPECT_EQ(m[a]["uri"], "qemu:///system");
  EXPECT_EQ(m[a]["ram_bytes"], 256 * MiB);
  EXPECT_EQ(m[a]["backing_source"], "memfd");
  EXPECT_GT(m[a]["pid"].get<int>(), 0);
  // 512 MiB of RAM on a 320 MiB pool: at least 192 MiB is loaned between
  // them, each reaches its target, and the host backs what is left.
  ASSERT_TRUE(WaitUntil([&] {
    m = Members();
    if (m.size() != 2) return false;
    uint64_t loaned = 0, backing = 0;
    for (const auto& [_, d] : m.items()) {
      const auto l = d["loaned_bytes"].get<uint64_t>(), t = d["target_loaned_bytes"].get<uint64_t>();
      if ((l > t ? l - t : t - l) > MiB) return false;
      loaned += l;
      backing += d["backing_bytes"].get<uint64_t>();
    }
    return loaned >= 192 * MiB && backing <= 320 * MiB;
  }, 120s)) << m.dump(1) << hv.err();
  const auto status = RunCmm(dir.path(), {"hv", "status"});
  EXPECT_NE(status.out.find("0 partitions, 0 VMs and 2 domains"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("qemu:///system, QEMU pid"), std::string::npos) << status.out;
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
  // The domains keep running without it.
  EXPECT_TRUE(Sh("virsh -c qemu:///system domstate " + a + " | grep -q running"));
}

TEST_F(RealLibvirt, ADomainStartedLaterJoinsAndOneDestroyedLeavesAtOnce) {
  GuestProcess hv(dir.path(), {"--pool", "512M", "--period-ms", "500", "--libvirt"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return RunCmm(dir.path(), {"hv", "status"}).code == 0; })) << hv.err();
  const std::string c = Create("c", 256);
  const auto t0 = std::chrono::steady_clock::now();  // `virsh create` has returned: it runs
  ASSERT_TRUE(WaitUntil([&] { return Members().contains(c); }, 5s)) << hv.err();
  const auto joined = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(Sh("virsh -c qemu:///system destroy " + c));
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitUntil([&] { return !Members().contains(c); }, 2s)) << hv.err();
  const auto left = std::chrono::steady_clock::now() - t1;
  std::printf("libvirt: a started domain was in the pool %lld ms after `virsh create` returned; a destroyed one "
              "was gone %lld ms after `virsh destroy` returned (each read with `cmm hv status`)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(joined).count()),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
  EXPECT_NE(hv.err().find("domain " + c + " left"), std::string::npos) << hv.err();
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
}

TEST_F(RealLibvirt, ADomainWithoutABalloonIsSkippedWithALogLineAndAStatusNote) {
  const std::string d = Create("noballoon", 128, false);
  const std::string e = Create("balloon", 128, true);
  GuestProcess hv(dir.path(), {"--pool", "512M", "--period-ms", "500", "--libvirt"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return Members().contains(e); }, 20s)) << hv.err();
  EXPECT_FALSE(Members().contains(d));
  EXPECT_TRUE(WaitUntil([&] {
    return hv.err().find("domain " + d + ": skipped: it has no balloon") != std::string::npos;
  })) << hv.err();
  const std::string note = "note: domain " + d + " is not managed: it has no balloon";
  auto status = RunCmm(dir.path(), {"hv", "status"});
  EXPECT_NE(status.out.find(note), std::string::npos) << status.out;
  const json j = json::parse(RunCmm(dir.path(), {"hv", "status", "--json"}).out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("notes")) << j.dump(1);
  EXPECT_EQ(j["notes"].size(), 1U) << j.dump(1);
  // The note goes with the domain.
  ASSERT_TRUE(Sh("virsh -c qemu:///system destroy " + d));
  EXPECT_TRUE(WaitUntil([&] {
    return RunCmm(dir.path(), {"hv", "status"}).out.find(note) == std::string::npos;
  }, 5s)) << RunCmm(dir.path(), {"hv", "status"}).out;
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
}

TEST_F(RealLibvirt, ADomainThatFillsPastItsTargetDeflatesOnOomAndItIsCountedAsItsOomEvent) {
  // Once the balloon has taken its memory, the guest writes 120 MiB it
  // cannot have: its OOM notifier deflates the balloon (autodeflate='on').
  const std::string o = Create("oom", 256, true, "cmm.fill=120 cmm.fill_when_below=64");
  GuestProcess hv(dir.path(), {"--pool", "512M", "--period-ms", "500", "--libvirt"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return Members().contains(o); }, 20s)) << hv.err();
  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", o, "--max", "96M"}).code, 0);  // loans 160 MiB
  const std::string console = dir.path() + "/" + o + ".console";
  json m;
  ASSERT_TRUE(WaitUntil([&] {
    m = Members()[o];
    return m.is_object() && m["oom_events"].get<uint64_t>() > 0;
  }, 120s)) << m.dump(1) << Slurp(console) << hv.err();
  EXPECT_TRUE(WaitUntil([&] { return Slurp(console).find("filled 120M") != std::string::npos; }, 30s))
      << Slurp(console);
  EXPECT_LT(Members()[o]["loaned_bytes"].get<uint64_t>(), 160 * MiB);  // the balloon rose above its target
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
}

TEST_F(RealLibvirt, TermsSetWithCmmHvSetAreInTheDomainsMetadataAndComeBackAfterARestart) {
  const std::string t = Create("terms", 128, true, "", hv::MemberSettings{17, FromUnsigned<Bytes>(32 * MiB), Bytes(0)});
  const std::string u = Create("untagged", 128);
  const std::vector<std::string> args = {"--pool", "512M", "--period-ms", "500", "--libvirt", "--libvirt-select",
                                         "tagged"};
  auto hv = std::make_unique<GuestProcess>(dir.path(), args, "hv", "hv1");
  ASSERT_TRUE(WaitUntil([&] { return Members().contains(t); }, 20s)) << hv->err();
  json m = Members()[t];
  EXPECT_EQ(m["weight"], 17);  // read from its <metadata>
  EXPECT_EQ(m["min_bytes"], 32 * MiB);
  EXPECT_TRUE(WaitUntil([&] { return hv->err().find("domain " + u + ": not managed") != std::string::npos; }))
      << hv->err();
  EXPECT_FALSE(Members().contains(u));  // --libvirt-select tagged

  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", t, "--weight", "9", "--max", "96M"}).code, 0);
  auto said = [&] {
    const auto r = std::system(("virsh -c qemu:///system metadata " + t + " urn:cmm:terms:1 > " + dir.path() +
                                "/said.xml 2>&1")
                                   .c_str());
    return r == 0 ? Slurp(dir.path() + "/said.xml") : std::string();
  };
  std::string xml;
  ASSERT_TRUE(WaitUntil([&] {
    xml = said();
    return xml.find("weight=\"9\"") != std::string::npos && xml.find("max=\"100663296\"") != std::string::npos;
  })) << xml << hv->err();
  // Without cmm's own state, the domain's <metadata> alone brings them back.
  EXPECT_EQ(hv->Stop(), 0) << hv->err();
  ASSERT_EQ(std::remove((dir.path() + "/hv.state").c_str()), 0);
  hv = std::make_unique<GuestProcess>(dir.path(), args, "hv", "hv2");
  ASSERT_TRUE(WaitUntil([&] { return Members().contains(t); }, 20s)) << hv->err();
  m = Members()[t];
  EXPECT_EQ(m["weight"], 9);
  EXPECT_EQ(m["min_bytes"], 32 * MiB);
  EXPECT_EQ(m["max_bytes"], 96 * MiB);
  EXPECT_EQ(hv->Stop(), 0) << hv->err();
}

TEST_F(RealLibvirt, DemoWithLibvirtRunsItsGuestsAsTransientDomainsSeenInVirshListAndGoneAfter) {
  GuestProcess demo(dir.path(),
                    {"--libvirt", "--image", image_, "--accel", "tcg", "--pool", "384M", "--duration", "15", "--http",
                     "off"},
                    "demo", "demo");
  std::vector<std::string> names;
  for (const char* role : {"web1", "db1", "batch1"}) names.push_back(fmt::format("cmm-demo-{}-{}", demo.pid(), role));
  created_.insert(created_.end(), names.begin(), names.end());  // destroyed even when this fails
  auto listed = [&] {
    const std::string file = dir.path() + "/list.txt";
    if (std::system(("virsh -c qemu:///system list --name > " + file + " 2>&1").c_str()) != 0) return std::string();
    return Slurp(file);
  };
  ASSERT_TRUE(WaitUntil([&] {
    const std::string l = listed();
    for (const auto& n : names) {
      if (l.find(n) == std::string::npos) return false;
    }
    return true;
  }, 200s)) << listed() << demo.out() << demo.err();  // three domain starts, each may take 45 s (CMakeLists.txt)
  ASSERT_TRUE(WaitUntil([&] { return demo.out().find("summary after") != std::string::npos; }, 120s))
      << demo.out() << demo.err();
  EXPECT_EQ(demo.Stop(), 0) << demo.out() << demo.err();
  const std::string out = demo.out();
  EXPECT_NE(out.find("web1     bursty web server (libvirt domain)"), std::string::npos) << out;
  EXPECT_NE(out.find("its libvirt domains are gone"), std::string::npos) << out;
  EXPECT_NE(out.find("integrity errors                       0"), std::string::npos) << out;
  const std::string after = listed();
  for (const auto& n : names) EXPECT_EQ(after.find(n), std::string::npos) << after;
}

TEST_F(RealLibvirt, LibvirtdKilledAndStartedAgainTheHypervisorStaysUpAndManagesItsDomainsAgain) {
  if (Libvirtd::ours() <= 0) GTEST_SKIP() << "libvirtd was running before the tests: not theirs to kill";
  const std::string x = Create("x", 256);
  GuestProcess hv(dir.path(), {"--pool", "384M", "--period-ms", "500", "--libvirt"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return RunCmm(dir.path(), {"hv", "status"}).code == 0; })) << hv.err();
  GuestProcess p1(dir.path(), {"--name", "p1", "--mem", "32M", "--weight", "7"}, "guest", "p1");
  auto responsive = [&](const std::string& name) {
    const json m = Members();
    return m.contains(name) && m[name]["responsive"].get<bool>();
  };
  ASSERT_TRUE(WaitUntil([&] { return responsive(x) && responsive("p1"); }, 30s))
      << hv.err() << p1.err() << Members().dump(1);

  Libvirtd::KillLibvirtd();  // -9: its domains' QEMUs keep running
  // How the hypervisor is, should it not answer: running, or a zombie.
  auto state = [&] {
    std::ifstream stat("/proc/" + std::to_string(hv.pid()) + "/stat");
    std::string pid, comm, s;
    stat >> pid >> comm >> s;
    return "hypervisor process state: " + s + "\n";
  };
  ASSERT_TRUE(WaitUntil([&] {
    const json m = Members();
    return m.contains(x) && m[x]["note"].get<std::string>().find("is away") != std::string::npos;
  }, 15s)) << state() << hv.err() << Members().dump(1);
  EXPECT_EQ(kill(hv.pid(), 0), 0) << hv.err();
  EXPECT_TRUE(responsive("p1")) << Members().dump(1);
  EXPECT_EQ(Members()["p1"]["weight"], 7);

  ASSERT_TRUE(Libvirtd::StartLibvirtd());
  ASSERT_TRUE(WaitUntil([&] { return responsive(x); }, 30s)) << hv.err() << Members().dump(1);
  EXPECT_NE(hv.err().find("domain " + x + ": managed again"), std::string::npos) << hv.err();
  // Targets go through the new connection: a ceiling makes it loan.
  ASSERT_EQ(RunCmm(dir.path(), {"hv", "set", x, "--max", "160M"}).code, 0);
  EXPECT_TRUE(WaitUntil([&] { return Members()[x]["loaned_bytes"].get<uint64_t>() >= 95 * MiB; }, 60s))
      << Members().dump(1) << hv.err();
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
}

}  // namespace
}  // namespace cmm::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new cmm::testing::Libvirtd);
  return RUN_ALL_TESTS();
}
