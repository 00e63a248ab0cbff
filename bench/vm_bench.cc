// QEMU guests ballooned through cmm. A real 1 GiB Linux guest (TCG, its
// memory touched with non-zero bytes first) is inflated by 768 MiB and
// deflated again, once with the target pushed by cmm's VM adapter (the
// hypervisor's own code path), once by a bare QMP client sending `balloon`
// to the same QEMU; both timed the same way, from the push until QEMU
// reports `actual` within 1 MiB of the target. Then three 384 MiB guests
// share a pool of their size under the real rebalancer, the pool shrinks
// by 25%, and the time until the members' usable memory fits it is
// counted in policy periods.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "demo/child.h"
#include "pool/pool.h"
#include "members/qemu/qmp_client.h"
#include "members/qemu/qmp_decode.h"
#include "pool/rebalancer.h"
#include "members/qemu/vm_adapter.h"
#include "report.h"
#include "members/qemu/qemu.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using namespace cmm;
constexpr uint64_t kMiB = 1 << 20;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit, std::chrono::microseconds step = 500us) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

struct Guest {
  std::string dir;
  std::optional<demo::Child> qemu;
  std::string qmp() const { return dir + "/qmp.sock"; }
  std::string control() const { return dir + "/control.qmp.sock"; }
};

std::unique_ptr<Guest> Boot(const std::string& root, const std::string& image, const std::string& name, uint64_t mem,
                            const std::string& append) {
  auto g = std::make_unique<Guest>();
  g->dir = root + "/" + name;
  mkdir(g->dir.c_str(), 0700);
  vm::QemuConfig c;
  c.name = name;
  c.mem_bytes = mem;
  c.kernel = image + "/vmlinuz";
  c.initrd = image + "/initrd.img";
  c.append = append;
  c.accel = "tcg";
  c.qmp_path = g->qmp();
  c.control_qmp_path = g->control();
  c.serial_log = g->dir + "/serial.log";
  auto child = demo::Child::Spawn(vm::QemuArgv(c), g->dir + "/qemu.log");
  if (!child) return nullptr;
  g->qemu.emplace(std::move(*child));
  struct stat st {};
  if (!WaitFor([&] { return stat(g->control().c_str(), &st) == 0; }, 10s, 10ms)) return nullptr;
  return g;
}

// Seconds from `push` until QEMU says actual is within 1 MiB of `value`.
double Timed(hv::QmpClient& q, uint64_t value, const std::function<void()>& push) {
  const auto t0 = Clock::now();
  push();
  WaitFor([&] {
    auto r = q.Execute("query-balloon");
    if (!r) return true;
    const uint64_t actual = UnsignedField(*r, "actual").value_or(0);
    return (actual > value ? actual - value : value - actual) <= kMiB;
  }, 120s, 200us);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main() {
  if (std::system((vm::QemuBinary() + " --version >/dev/null 2>&1").c_str()) != 0) {
    std::fprintf(stderr, "vm bench: no %s; scripts/install-deps installs qemu-system-x86\n", vm::QemuBinary().c_str());
    return 1;
  }
  char tmpl[] = "/tmp/cmm-vm-bench-XXXXXX";
  const std::string root = mkdtemp(tmpl);
  const std::string image = root + "/image";
  if (std::system((std::string(CMM_SOURCE_DIR) + "/scripts/make-guest-image " + image + " >/dev/null").c_str()) != 0) {
    std::fprintf(stderr, "vm bench: scripts/make-guest-image failed\n");
    return 1;
  }
  spdlog::set_level(spdlog::level::warn);
  constexpr uint64_t kRam = 1024 * kMiB, kLoan = 768 * kMiB;
  constexpr int kRuns = 5;
  std::printf("cmm VM benchmark: a 1 GiB Linux guest under TCG, %llu MiB inflated and deflated, best of %d;\n"
              "three 384 MiB guests meeting a pool shrunk by 25%%\n",
              static_cast<unsigned long long>(kLoan / kMiB), kRuns);
  std::fflush(stdout);

  double cmm_in = 1e9, cmm_out = 1e9, raw_in = 1e9, raw_out = 1e9;
  {
    auto g = Boot(root, image, "big", kRam, "cmm.touch=max");
    if (!g || !WaitFor([&] { return Slurp(g->dir + "/serial.log").find("touched and freed") != std::string::npos; },
                       180s, 100ms)) {
      std::fprintf(stderr, "vm bench: the 1 GiB guest did not boot: %s\n", Slurp(g->dir + "/serial.log").c_str());
      return 1;
    }
    hv::VmOptions o;
    o.name = "big";
    o.qmp_path = g->qmp();
    auto vm = hv::VmMember::Attach(o, {});
    auto bare = hv::QmpClient::Connect(g->control());
    if (!vm || !bare) {
      std::fprintf(stderr, "vm bench: cannot attach: %s\n", vm ? bare.error().c_str() : vm.error().message.c_str());
      return 1;
    }
    hv::QmpClient& q = **bare;
    // Between runs, QEMU's rate-limited BALLOON_CHANGE events settle.
    auto settle = [] { std::this_thread::sleep_for(1500ms); };
    auto by_cmm = [&] {
      settle();
      cmm_in = std::min(cmm_in, Timed(q, kRam - kLoan, [&] { (*vm)->Assign({FromUnsigned<Bytes>(kLoan), Bytes(0), 0}); }));
      cmm_out = std::min(cmm_out, Timed(q, kRam, [&] { (*vm)->Assign({Bytes(0), Bytes(0), 0}); }));
    };
    auto by_bare = [&] {
      settle();
      raw_in = std::min(raw_in, Timed(q, kRam - kLoan, [&] { (void)q.Execute("balloon", {{"value", kRam - kLoan}}); }));
      raw_out = std::min(raw_out, Timed(q, kRam, [&] { (void)q.Execute("balloon", {{"value", kRam}}); }));
    };
    // Alternating, and in turn first: neither side always follows the other.
    for (int i = 0; i < kRuns; ++i) {
      if (i % 2 == 0) {
        by_cmm();
        by_bare();
      } else {
        by_bare();
        by_cmm();
      }
    }
  }

  // Three guests, one pool, the real rebalancer; then the pool shrinks.
  constexpr uint64_t kSmall = 384 * kMiB;
  constexpr auto kPeriod = 1000ms;
  double periods = -1;
  {
    std::vector<std::unique_ptr<Guest>> guests;
    for (const char* name : {"a", "b", "c"}) {
      guests.push_back(Boot(root, image, name, kSmall, ""));
      if (!guests.back()) {
        std::fprintf(stderr, "vm bench: guest %s did not start\n", name);
        return 1;
      }
    }
    std::atomic<uint64_t> pool_size{3 * kSmall};
    hv::PoolOptions po;
    po.pool_bytes = FromUnsigned<Bytes>(pool_size);
    po.sizer = [&](Bytes) { return FromUnsigned<Bytes>(pool_size.load()); };
    hv::Pool pool(po);
    hv::VmAdapter vms(pool, kPeriod);
    for (const auto& g : guests) {
      hv::VmOptions o;
      o.name = g->dir.substr(g->dir.rfind('/') + 1);
      o.qmp_path = g->qmp();
      if (auto a = vms.Attach(o, {}); !a) {
        std::fprintf(stderr, "vm bench: %s\n", a.error().message.c_str());
        return 1;
      }
    }
    hv::Rebalancer rebalancer(pool, kPeriod);
    auto all_fresh = [&] {
      const auto v = pool.Snapshot();
      return std::all_of(v.begin(), v.end(), [](const hv::MemberView& m) {
        return m.responsive && m.stats.taken != hv::MemberClock::time_point{};
      });
    };
    if (!WaitFor(all_fresh, 180s, 100ms)) {
      std::fprintf(stderr, "vm bench: the three guests did not report stats\n");
      return 1;
    }
    pool_size = 3 * kSmall * 3 / 4;
    const auto t0 = Clock::now();
    auto fits = [&] {
      uint64_t usable = 0;
      for (const auto& m : pool.Snapshot()) usable += AsUnsigned(m.ram_bytes - m.loaned_bytes);
      return usable <= pool_size.load() + 3 * kMiB;
    };
    if (WaitFor(fits, 120s, 10ms)) {
      periods = std::chrono::duration<double>(Clock::now() - t0) / kPeriod;
    }
  }
  (void)std::system(("rm -rf " + root).c_str());

  const double gib = static_cast<double>(kLoan) / double(1 << 30);
  std::printf("%-40s %12s %12s %8s %8s\n", "figure", "cmm", "raw limit", "ratio", "goal");
  std::printf("%-40s %7.2f GiB/s %7.2f GiB/s %8.2f %8s\n", "inflate 768 MiB of a 1 GiB guest", gib / cmm_in,
              gib / raw_in, raw_in / cmm_in, ">= 0.95");
  std::printf("%-40s %7.2f GiB/s %7.2f GiB/s %8.2f %8s\n", "deflate 768 MiB", gib / cmm_out, gib / raw_out,
              raw_out / cmm_out, ">= 0.95");
  std::printf("%-40s %8.1f per. %8.1f per. %8.2f %8s\n", "3 VMs meet a 25% pool shrink", periods, 1.0, periods,
              "<= 3");
  std::printf("  raw limit: a bare QMP client sends `balloon` to the same QEMU; both timed from the push until\n"
              "  query-balloon shows actual within 1 MiB; the shrink's floor is one period (the first decision)\n");
  const bool met = raw_in / cmm_in >= 0.95 && raw_out / cmm_out >= 0.95 && periods >= 0 && periods <= 3;
  std::printf("goals %s\n", met ? "met" : "NOT met");
  bench::Record({"vm", "inflate 768 MiB of a 1 GiB guest", "GiB/s", gib / cmm_in, gib / raw_in, raw_in / cmm_in,
                 ">= 0.95", raw_in / cmm_in >= 0.95});
  bench::Record({"vm", "deflate 768 MiB", "GiB/s", gib / cmm_out, gib / raw_out, raw_out / cmm_out, ">= 0.95",
                 raw_out / cmm_out >= 0.95});
  bench::Record({"vm", "3 VMs meet a 25% pool shrink (periods, lower is better)", "periods", periods, 1.0, periods,
                 "<= 3", periods >= 0 && periods <= 3});
  return 0;
}
