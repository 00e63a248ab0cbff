// `cmm demo`: one hypervisor and four partitions as real processes sharing
// a pool a third of their size, with a live view and a summary at the end.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/size_text.h"
#include "demo/runner.h"
#include "demo/scenario.h"
#include "demo/summary.h"
#include "members/qemu/qemu.h"

namespace cmm::cli {

namespace {

struct DemoFlags {
  std::string pool = "1G";
  int partitions = 4;
  double overcommit = 3.0;
  double duration = 60;
  bool compare = false;
  bool vms = false;
  bool mixed = false;
  bool overload = false;
  std::optional<std::string> libvirt;  // --libvirt [URI]: the VMs as libvirt domains
  std::string image;
  std::string accel = "auto";
  std::string http = "127.0.0.1:0";
};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

std::string SelfExe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw UserError("cannot find the cmm binary (/proc/self/exe)");
  return p.string();
}

int RunDemo(const DemoFlags& f) {
  demo::ScenarioOptions o;
  const auto pool = ParseSize(f.pool);
  if (!pool || *pool == 0) throw UserError(fmt::format("--pool {}: not a size; try 1G", f.pool), kExitUsage);
  o.pool_bytes = *pool;
  o.partitions = f.partitions;
  o.overcommit = f.overcommit;
  o.duration_s = f.duration;
  o.overload = f.overload;
  demo::VmKit kit;
  if (f.libvirt) kit.libvirt_uri = f.libvirt->empty() ? "qemu:///system" : *f.libvirt;
  if (f.vms || f.mixed) {
    o.vms = f.vms ? o.partitions : 2;
    const char* env = std::getenv("CMM_GUEST_IMAGE");
    kit.image_dir = !f.image.empty() ? f.image : env != nullptr ? env : "";
    if (kit.image_dir.empty() || access((kit.image_dir + "/initrd.img").c_str(), R_OK) != 0) {
      throw UserError(fmt::format("--vms/--mixed need a guest image{}: build one with `scripts/make-guest-image DIR "
                                  "build/release/src/vmguest/cmm-vm-workload` and give --image DIR (make demo-vms "
                                  "does both)",
                                  kit.image_dir.empty() ? "" : " at " + kit.image_dir),
                      kExitUsage);
    }
  }
  if (const std::string why = demo::CheckScenario(o); !why.empty()) throw UserError(why, kExitUsage);
  const demo::Scenario s = demo::BuildScenario(o);

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  fmt::print("cmm demo: a pool of {} shared by {} partitions of {} ({:.1f}x overcommit), {:.0f} s\n",
             FormatBytes(s.pool_bytes), s.partitions.size(), FormatBytes(s.partitions[0].ram_bytes), o.overcommit,
             o.duration_s);
  for (const auto& p : s.partitions) {
    fmt::print("  {:<8} {}{}: {}\n", p.name, p.role,
               !p.vm ? "" : kit.libvirt_uri.empty() ? " (QEMU VM)" : " (libvirt domain)", fmt::join(p.workloads, ", "));
  }
  uint64_t peaks = 0;
  for (const auto& p : s.partitions) peaks += demo::PeakBytes(p);
  fmt::print("at their peaks the workloads hold {} ({:.0f}% of the pool{}){}\n", FormatBytes(peaks),
             100.0 * static_cast<double>(peaks) / static_cast<double>(s.pool_bytes),
             o.vms > 0 ? ", VMs' kernels and caches included" : ", page caches not counted",
             peaks <= s.pool_bytes ? ""
             : o.overload          ? ": more than the pool, as --overload asks"
                                   : ": more than the pool");
  std::fflush(stdout);
  const std::string exe = SelfExe();
  if (o.vms > 0) {
    if (f.accel == "auto") {
      const auto choice = vm::ProbeAccel(kit.image_dir + "/vmlinuz", "/tmp", std::chrono::seconds(4));
      kit.accel = choice.accel;
      fmt::print("VMs run under {} ({})\n", choice.accel == "kvm" ? "KVM" : "TCG", choice.why);
    } else {
      kit.accel = f.accel;
    }
  }
  bool ok = false;
  demo::Summary on;
  uint64_t oom_kills = 0;
  bool domains_left = false;  // libvirt still lists one of its domains after the run
  {
    demo::Run run(s, exe, true, o.duration_s, g_stop, kit);
    if (f.http != "off") run.ServeWeb(f.http);
    auto done = run.Go(ok);
    if (!done) throw UserError(done.error());
    on = *done;
    oom_kills = run.guest_oom_kills();
    domains_left = run.domains_left();
  }
  std::optional<demo::Summary> off;
  if (f.compare && !g_stop) {
    fmt::print("\nthe same run with the balloon disabled, for comparison\n");
    std::fflush(stdout);
    bool ok_off = false;
    demo::Run run(s, exe, false, o.duration_s, g_stop, kit);
    if (f.http != "off") run.ServeWeb(f.http);
    auto done = run.Go(ok_off);
    if (!done) throw UserError(done.error());
    off = *done;
    domains_left |= run.domains_left();
  }
  fmt::print("\n{}", demo::FormatSummary(on, off ? &*off : nullptr));
  if (o.vms > 0) fmt::print("guest OOM kills (from the VMs' consoles): {}\n", oom_kills);
  if (!kit.libvirt_uri.empty()) {
    fmt::print("{}\n", domains_left ? "FAILED: libvirt still lists a domain this demo made"
                                    : "its libvirt domains are gone (they were transient)");
    ok = ok && !domains_left;
  }
  fmt::print("{}\n", ok ? "integrity held; every partition returned its pages and exited"
                        : "FAILED: a process failed or integrity broke (see above)");
  return ok ? 0 : 1;
}

}  // namespace

Runner AddDemo(CLI::App& app) {
  auto f = std::make_shared<DemoFlags>();
  auto* c = app.add_subcommand("demo", "Overcommit for real: a hypervisor and partitions sharing a pool, live");
  auto* pool = c->add_option("--pool", f->pool, "The pool the partitions share")->capture_default_str();
  auto* members = c->add_option("--partitions", f->partitions, "How many partitions (web, db, batch, idle, web, ...)")
                      ->capture_default_str();
  auto* over = c->add_option("--overcommit", f->overcommit, "Their RAM together, as a multiple of the pool")
                   ->capture_default_str();
  c->add_option("--duration", f->duration, "Seconds to run")->capture_default_str();
  c->add_flag("--compare", f->compare, "Run again with the balloon disabled and compare");
  c->add_flag("--overload", f->overload,
              "Workloads whose peaks together exceed the pool (about 120% of it): demand no policy can meet, said "
              "in the live view, the log and the summary");
  c->add_flag("--vms", f->vms,
              "Members are real QEMU guests (Linux's virtio_balloon); defaults become 3 VMs of 512 MiB on a 768 MiB "
              "pool");
  c->add_flag("--mixed", f->mixed, "Two QEMU guests and two partitions in one pool (defaults: 4 of 512 MiB, 1 GiB pool)");
  c->add_option("--libvirt", f->libvirt,
                "The VMs (--vms, the default here, or --mixed) are transient libvirt domains at URI (default "
                "qemu:///system), managed by cmm hv --libvirt; visible in virsh list while it runs, gone after")
      ->expected(0, 1);
  c->add_option("--image", f->image, "With --vms/--mixed: the guest image directory (default: $CMM_GUEST_IMAGE)");
  c->add_option("--accel", f->accel, "With --vms/--mixed: auto, kvm or tcg")->capture_default_str();
  c->add_option("--http", f->http,
                "Where the hypervisor serves the pool's web page: 127.0.0.1:PORT (0: any free port), or off")
      ->capture_default_str();
  c->footer("Examples:\n  cmm demo\n  cmm demo --pool 512M --duration 30 --compare\n"
            "  cmm demo --vms --image /tmp/guest      (make demo-vms builds the image and runs this)\n"
            "  cmm demo --vms --overload --image /tmp/guest\n"
            "  cmm demo --libvirt --image /tmp/guest  (make demo-libvirt: the same guests as libvirt domains)");
  return [f, pool, members, over] {
    if (f->vms && f->mixed) throw UserError("--vms or --mixed, not both", kExitUsage);
    if (f->libvirt && !f->mixed) f->vms = true;
    // VMs' own defaults, where not given: 512 MiB each at 2x.
    if ((f->vms || f->mixed) && pool->count() == 0) f->pool = f->vms ? "768M" : "1G";
    if ((f->vms || f->mixed) && members->count() == 0) f->partitions = f->vms ? 3 : 4;
    if ((f->vms || f->mixed) && over->count() == 0) f->overcommit = 2.0;
    if (f->accel != "auto" && f->accel != "kvm" && f->accel != "tcg") {
      throw UserError(fmt::format("--accel {}: one of auto, kvm, tcg", f->accel), kExitUsage);
    }
    return RunDemo(*f);
  };
}

}  // namespace cmm::cli
