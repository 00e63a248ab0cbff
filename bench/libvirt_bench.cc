// End to end through libvirt: a 1 GiB transient TCG domain (the project's
// guest image, its memory touched with non-zero bytes first) inflated and
// deflated by cmm's libvirt wing (a target given to its member, pushed
// with virDomainSetMemoryFlags from the adapter's thread), beside a bare
// libvirt client calling virDomainSetMemoryFlags itself on the same domain
// in the same run. Both are timed from the request until the balloon's
// actual value, read the same way (virDomainMemoryStats), is within 1 MiB
// of the target; the ratio is bare/cmm (goal >= 0.95). Then how long a
// domain that starts takes to be managed, and one destroyed to leave.
// Needs libvirtd answering on qemu:///system; without it, it says so and
// records nothing.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "members/libvirt/domain_xml.h"
#include "members/libvirt/libvirt_adapter.h"
#include "pool/pool.h"
#include "report.h"

namespace {

using namespace std::chrono_literals;
using namespace cmm;
using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRam = 1024 * kMiB, kInflated = 512 * kMiB;

std::string Xml(const std::string& name, const std::string& dir, uint64_t mib, const std::string& cmdline) {
  hv::DomainSpec spec;
  spec.name = name;
  spec.mem_bytes = mib * kMiB;
  spec.kernel = dir + "/vmlinuz";
  spec.initrd = dir + "/initrd.img";
  spec.cmdline = "console=ttyS0 " + cmdline;
  spec.console_path = dir + "/" + name + ".console";
  return hv::DomainXml(spec);
}

uint64_t Actual(virDomainPtr dom) {
  virDomainMemoryStatStruct s[VIR_DOMAIN_MEMORY_STAT_NR];
  const int n = virDomainMemoryStats(dom, s, VIR_DOMAIN_MEMORY_STAT_NR, 0);
  for (int i = 0; i < n; ++i) {
    if (s[i].tag == VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON) return static_cast<uint64_t>(s[i].val) << 10;
  }
  return 0;
}

// Seconds from `ask` until the balloon is within 1 MiB of `guest` bytes.
double Timed(virDomainPtr dom, uint64_t guest, const std::function<void()>& ask) {
  const auto t0 = Clock::now();
  ask();
  while (Clock::now() - t0 < 300s) {
    const uint64_t a = Actual(dom);
    if ((a > guest ? a - guest : guest - a) <= kMiB) break;
    // Each reading is a round trip through libvirtd to QEMU's main loop,
    // which also runs the balloon: read more often and the reading slows
    // what it times.
    std::this_thread::sleep_for(10ms);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Milliseconds until `done`, or -1 past `limit`.
template <class F>
double MsUntil(F done, std::chrono::seconds limit = 30s) {
  const auto t0 = Clock::now();
  while (!done()) {
    if (Clock::now() - t0 > limit) return -1;
    std::this_thread::sleep_for(1ms);
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main() {
  virConnectPtr bare = virConnectOpen("qemu:///system");
  if (bare == nullptr) {
    std::printf("libvirt bench: skipped: nothing answers on qemu:///system (start virtlogd and libvirtd first)\n");
    return 0;
  }
  char tmpl[] = "/tmp/cmm-libvirt-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  chmod(dir.c_str(), 0755);  // libvirt's QEMU runs as libvirt-qemu
  if (std::system((std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + dir + " >/dev/null").c_str()) != 0) {
    std::fprintf(stderr, "libvirt bench: scripts/make-guest-image failed\n");
    return 1;
  }
  for (const char* f : {"/vmlinuz", "/initrd.img"}) chmod((dir + f).c_str(), 0644);
  spdlog::set_level(spdlog::level::warn);
  const std::string name = fmt::format("cmmbench-{}", getpid());
  virDomainPtr dom = virDomainCreateXML(bare, Xml(name, dir, kRam / kMiB, "cmm.touch=max").c_str(), 0);
  if (dom == nullptr) {
    std::fprintf(stderr, "libvirt bench: cannot create the domain: %s\n", virGetLastErrorMessage());
    return 1;
  }
  auto console = [&] {
    std::ifstream in(dir + "/" + name + ".console");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  if (MsUntil([&] { return console().find("touched and freed") != std::string::npos; }, 180s) < 0) {
    std::fprintf(stderr, "libvirt bench: the domain did not boot: %s\n", console().c_str());
    virDomainDestroy(dom);
    return 1;
  }
  std::printf("cmm libvirt benchmark: a 1 GiB domain under TCG, %llu MiB inflated and deflated, median of 6 pairs after one to warm up, taking turns to go first\n",
              static_cast<unsigned long long>((kRam - kInflated) / kMiB));

  hv::PoolOptions po;
  po.pool_bytes = Bytes(64LL << 30);  // the targets below are given by hand
  hv::Pool pool(po);
  hv::LibvirtOptions lo;
  lo.period = 200ms;
  auto adapter = hv::LibvirtAdapter::Start(pool, lo);
  if (!adapter || MsUntil([&] { return pool.Find(name) != nullptr; }) < 0) {
    std::fprintf(stderr, "libvirt bench: the adapter did not take the domain\n");
    virDomainDestroy(dom);
    return 1;
  }
  auto member = pool.Find(name);
  auto give = [&](uint64_t loan) { member->Assign({FromUnsigned<Bytes>(loan), Bytes(0), 0}); };
  std::vector<double> cmm_in, cmm_out, raw_in, raw_out;
  // One pair untimed first: the first inflate after boot meets free pages
  // the guest has never touched since, and is quicker than any after it.
  Timed(dom, kInflated, [&] { virDomainSetMemoryFlags(dom, kInflated >> 10, VIR_DOMAIN_AFFECT_LIVE); });
  Timed(dom, kRam, [&] { virDomainSetMemoryFlags(dom, kRam >> 10, VIR_DOMAIN_AFFECT_LIVE); });
  // Alternating which goes first, so that neither always meets the guest
  // just after the other's deflate.
  for (int i = 0; i < 6; ++i) {
    auto raw = [&] {
      raw_in.push_back(Timed(dom, kInflated, [&] { virDomainSetMemoryFlags(dom, kInflated >> 10, VIR_DOMAIN_AFFECT_LIVE); }));
      raw_out.push_back(Timed(dom, kRam, [&] { virDomainSetMemoryFlags(dom, kRam >> 10, VIR_DOMAIN_AFFECT_LIVE); }));
    };
    // The adapter's own last ask is the RAM again: each target below is new to it.
    auto through_cmm = [&] {
      cmm_in.push_back(Timed(dom, kInflated, [&] { give(kRam - kInflated); }));
      cmm_out.push_back(Timed(dom, kRam, [&] { give(0); }));
    };
    if (i % 2 == 0) {
      raw();
      through_cmm();
    } else {
      through_cmm();
      raw();
    }
  }
  std::printf("  each run (s): cmm inflate %s, bare inflate %s\n", fmt::format("{:.2f}", fmt::join(cmm_in, " ")).c_str(),
              fmt::format("{:.2f}", fmt::join(raw_in, " ")).c_str());
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
  };
  const double gib = static_cast<double>(kRam - kInflated) / static_cast<double>(1ULL << 30);
  struct Row {
    const char* what;
    double cmm, raw;
  };
  for (const Row& r : {Row{"inflate", median(cmm_in), median(raw_in)}, Row{"deflate", median(cmm_out), median(raw_out)}}) {
    const double ratio = r.raw / r.cmm;
    std::printf("  %s %.0f MiB: cmm %.2f s (%.2f GiB/s), bare libvirt client %.2f s (%.2f GiB/s): %.2fx (goal >= 0.95)\n",
                r.what, gib * 1024, r.cmm, gib / r.cmm, r.raw, gib / r.raw, ratio);
    bench::Record({"libvirt", fmt::format("{} of a 1 GiB domain", r.what), "GiB/s", gib / r.cmm, gib / r.raw, ratio,
                   ">= 0.95", ratio >= 0.95});
  }

  // Joining and leaving: a second domain, from its start to the pool and
  // from its destruction out of it (lifecycle events, not polling).
  const std::string small = name + "-b";
  virDomainPtr b = virDomainCreateXML(bare, Xml(small, dir, 128, "").c_str(), 0);
  const double join_ms = b == nullptr ? -1 : MsUntil([&] { return pool.Find(small) != nullptr; });
  if (b != nullptr) virDomainDestroy(b);
  const double leave_ms = b == nullptr ? -1 : MsUntil([&] { return pool.Find(small) == nullptr; });
  std::printf("  a started domain managed in %.0f ms; a destroyed one gone in %.0f ms\n", join_ms, leave_ms);
  bench::Record({"libvirt", "a started domain managed", "ms", join_ms, 0, 0, "", true});
  bench::Record({"libvirt", "a destroyed domain gone", "ms", leave_ms, 0, 0, "", true});
  if (b != nullptr) virDomainFree(b);
  adapter->reset();
  virDomainDestroy(dom);
  virDomainFree(dom);
  virConnectClose(bare);
  std::filesystem::remove_all(dir);
  return 0;
}
