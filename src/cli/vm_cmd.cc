// `cmm vm run`: start a QEMU guest and put it in the hypervisor's pool;
// `cmm vm attach`: put a QEMU someone else started in the pool.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/hv_call.h"
#include "core/json_fields.h"
#include "core/names.h"
#include "ctl/client.h"
#include "ctl/paths.h"
#include "demo/child.h"
#include "members/qemu/qmp_client.h"
#include "members/qemu/console.h"
#include "members/qemu/qemu.h"
#include "members/virtio/guest_cmdline.h"

namespace cmm::cli {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct VmFlags {
  std::string name;
  std::string control;  // the hypervisor's control socket
  std::optional<int> weight;
  std::string pool_min, pool_max;
  // attach
  std::string qmp;
  int pid = 0;
  // run
  std::string mem;
  int cpus = 1;
  std::string kernel, initrd, disk, append;
  std::string accel = "auto";
  std::string run_dir;
  int grace_s = 5;
  std::vector<std::string> workloads;
  std::vector<std::string> files;
};

std::string ControlPath(const VmFlags& f) { return f.control.empty() ? ctl::RunDir() + "/hv.ctl" : f.control; }

// Asks the hypervisor to drive the QEMU at `qmp`; returns its reply.
json AttachToPool(const VmFlags& f, const std::string& qmp, int pid) {
  json req = {{"op", "vm-attach"}, {"name", f.name}, {"qmp", qmp}, {"pid", pid}};
  if (f.weight) req["weight"] = *f.weight;
  PutSize(req, "min_bytes", "--pool-min", f.pool_min, "256M");
  PutSize(req, "max_bytes", "--pool-max", f.pool_max, "256M");
  return CallHypervisor(ControlPath(f), req, "vm " + f.name, std::chrono::seconds(15));
}

std::string Joined(const json& r) {
  return fmt::format("QEMU {} (pid {}), {} of RAM, backing {} measured from its {}", r.value("qemu", "?"),
                     r.value("pid", 0), FormatBytes(r.value("ram_bytes", uint64_t{0})),
                     FormatBytes(r.value("backing_bytes", uint64_t{0})), r.value("backing_source", "?"));
}

int VmAttach(const VmFlags& f) {
  const json r = AttachToPool(f, f.qmp, f.pid);
  fmt::print("vm {}: {}; in the pool of the hypervisor at {}\n", f.name, Joined(r), ControlPath(f));
  return 0;
}

bool WaitForSocket(const std::string& path, demo::Child& qemu, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  struct stat st {};
  while (std::chrono::steady_clock::now() < until && qemu.Running()) {
    if (stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

// Whether the hypervisor has a member of that name: nullopt when no
// hypervisor answers there.
std::optional<bool> InPool(const std::string& control, const std::string& name) {
  auto reply = ctl::Call(control, {{"op", "status"}}, 2s);
  if (!reply || !BoolField(*reply, "ok").value_or(false)) return std::nullopt;
  const json* members = Field(*reply, "partitions");
  if (members == nullptr || !members->is_array()) return std::nullopt;
  for (const json& m : *members) {
    if (StringField(m, "name").value_or("") == name) return true;
  }
  return false;
}

// The VM's folder is its own while this lock is held: a second `cmm vm run`
// of the name finds it taken and touches nothing. Its text is our pid.
class RunLock {
 public:
  static std::optional<RunLock> Take(const std::string& dir) {
    const int fd = open((dir + "/run.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return std::nullopt;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      close(fd);
      return std::nullopt;
    }
    const std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(fd, 0) != 0 || write(fd, pid.data(), pid.size()) < 0) {
      // The lock holds without the pid; the pid is only for the message.
    }
    return RunLock(fd);
  }
  // The pid of a running holder, or 0 when nobody holds it.
  static pid_t Holder(const std::string& dir) {
    const int fd = open((dir + "/run.lock").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    pid_t pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
      char text[32] = {};
      if (read(fd, text, sizeof text - 1) > 0) pid = static_cast<pid_t>(std::atoi(text));
      if (pid == 0) pid = -1;  // held, pid unknown
    }
    close(fd);
    return pid;
  }
  RunLock(RunLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RunLock(const RunLock&) = delete;
  ~RunLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

int VmRun(const VmFlags& f) {
  // Everything is checked before QEMU starts or a folder is made.
  if (!ValidName(f.name)) {
    throw UserError(fmt::format("VM name \"{}\" is not valid: use {}", f.name, kNameRule), kExitUsage);
  }
  const auto mem = ParseSize(f.mem);
  if (!mem || *mem < (64u << 20) || *mem % (1 << 20) != 0) {
    throw UserError(fmt::format("--mem {}: give whole MiB of at least 64M, e.g. 512M", f.mem), kExitUsage);
  }
  for (const auto& [flag, text] : {std::pair{"--pool-min", f.pool_min}, std::pair{"--pool-max", f.pool_max}}) {
    if (text.empty()) continue;
    const auto bytes = ParseSize(text);
    if (!bytes || *bytes > *mem) {
      throw UserError(fmt::format("{} {}: not a size within --mem {}", flag, text, f.mem), kExitUsage);
    }
  }
  if (!f.pool_min.empty() && !f.pool_max.empty() && *ParseSize(f.pool_min) > *ParseSize(f.pool_max)) {
    throw UserError(fmt::format("--pool-min {} is above --pool-max {}", f.pool_min, f.pool_max), kExitUsage);
  }
  if (f.kernel.empty() == f.disk.empty()) {
    throw UserError("give --kernel FILE --initrd FILE, or --disk IMAGE (scripts/make-guest-image OUT builds a kernel "
                    "and initrd)",
                    kExitUsage);
  }
  for (const std::string& file : {f.kernel, f.initrd, f.disk}) {
    if (!file.empty() && access(file.c_str(), R_OK) != 0) throw UserError(fmt::format("{}: cannot read it", file));
  }
  if (f.accel != "auto" && f.accel != "kvm" && f.accel != "tcg") {
    throw UserError(fmt::format("--accel {}: one of auto, kvm, tcg", f.accel), kExitUsage);
  }
  std::vector<vm::GuestFile> files;
  for (const std::string& path : f.files) {
    std::ifstream in(path);
    if (!in) throw UserError(fmt::format("--file {}: cannot read it", path));
    files.push_back({path.substr(path.rfind('/') + 1),
                     std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())});
  }
  auto append = vm::GuestCmdline(f.append, f.workloads, files);
  if (!append) throw UserError(append.error().message, kExitUsage);
  const std::string dir = f.run_dir.empty() ? ctl::RunDir() + "/vm-" + f.name : f.run_dir;
  if (const pid_t holder = RunLock::Holder(dir); holder != 0) {
    throw UserError(fmt::format("vm {} is already running{} with its folder {}; stop it first or choose another name",
                                f.name, holder > 0 ? fmt::format(" (cmm vm run, pid {})", holder) : "", dir));
  }
  const auto in_pool = InPool(ControlPath(f), f.name);
  if (!in_pool) {
    throw UserError(fmt::format("no hypervisor answers at {}; start one with `cmm hv --pool SIZE`", ControlPath(f)));
  }
  if (*in_pool) {
    throw UserError(fmt::format("a member named {} is already in the pool of the hypervisor at {}; choose another "
                                "name",
                                f.name, ControlPath(f)));
  }
  if (auto d = ctl::EnsureDir(dir); !d) throw UserError(d.error());
  auto lock = RunLock::Take(dir);
  if (!lock) throw UserError(fmt::format("vm {} is already running with its folder {}", f.name, dir));

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  vm::QemuConfig c;
  c.name = f.name;
  c.mem_bytes = *mem;
  c.cpus = f.cpus;
  c.kernel = f.kernel;
  c.initrd = f.initrd;
  c.disk = f.disk;
  c.append = *append;
  c.qmp_path = dir + "/qmp.sock";
  c.control_qmp_path = dir + "/control.qmp.sock";
  c.serial_log = dir + "/serial.log";
  std::string why = "asked for";
  if (f.accel == "auto") {
    const auto choice = vm::ProbeAccel(f.kernel, dir, 4s);
    c.accel = choice.accel;
    why = choice.why;
  } else {
    c.accel = f.accel;
  }
  for (const std::string& p : {c.qmp_path, c.control_qmp_path, c.serial_log}) std::remove(p.c_str());
  auto qemu = demo::Child::Spawn(vm::QemuArgv(c), dir + "/qemu.log");
  if (!qemu) throw UserError(fmt::format("cannot start {}", vm::QemuBinary()));
  if (!WaitForSocket(c.qmp_path, *qemu, 10s) || !WaitForSocket(c.control_qmp_path, *qemu, 2s)) {
    qemu->Stop(1s);
    throw UserError(fmt::format("QEMU did not start: {} (see {}/qemu.log)", Tail(dir + "/qemu.log"), dir));
  }
  auto control = hv::QmpClient::Connect(c.control_qmp_path);
  if (!control) {
    qemu->Stop(1s);
    throw UserError(fmt::format("QEMU's QMP: {}", control.error()));
  }
  json joined;
  try {
    joined = AttachToPool(f, c.qmp_path, qemu->pid());
  } catch (const UserError&) {
    qemu->Stop(1s);
    throw;
  }
  fmt::print("vm {}: {} under {} ({}); serial console in {}\n", f.name, Joined(joined), c.accel == "kvm" ? "KVM" : "TCG",
             why, c.serial_log);
  std::fflush(stdout);

  // Until a signal, or until QEMU ends on its own. Each second: is it still
  // in the pool? A hypervisor that went away and came back without it (it
  // keeps its VMs, so only one that lost its state) is asked again.
  int sig = 0;
  bool managed = true;
  auto last_check = std::chrono::steady_clock::now();
  while (qemu->Running()) {
    timespec wait{0, 200'000'000};
    sig = sigtimedwait(&stop, nullptr, &wait);
    if (sig > 0) break;
    sig = 0;
    if (std::chrono::steady_clock::now() - last_check < 1s) continue;
    last_check = std::chrono::steady_clock::now();
    const auto here = InPool(ControlPath(f), f.name);
    if (!here) {
      if (managed) fmt::print("vm {}: the hypervisor is gone; the VM runs on unmanaged until it returns\n", f.name);
      managed = false;
    } else if (!*here) {
      try {
        (void)AttachToPool(f, c.qmp_path, qemu->pid());
        fmt::print("vm {}: back in the pool of the hypervisor at {}\n", f.name, ControlPath(f));
        managed = true;
      } catch (const UserError& e) {
        if (managed) fmt::print("vm {}: cannot join the pool again yet: {}\n", f.name, e.what());
        managed = false;
      }
    } else if (!managed) {
      fmt::print("vm {}: back in the pool of the hypervisor at {}\n", f.name, ControlPath(f));
      managed = true;
    }
    std::fflush(stdout);
  }
  // The guest workload's counters, read back from the console.
  auto report = [&] {
    const vm::ConsoleReading r = vm::ReadConsole(c.serial_log);
    if (!r.workload_report) return 0;
    fmt::print("vm {}: workload: {}\n", f.name, *r.workload_report);
    if (r.integrity_errors == 0) return 0;
    fmt::print("vm {}: the workload found {} integrity errors\n", f.name, r.integrity_errors);
    return 1;
  };
  if (sig == 0) {
    fmt::print("vm {}: QEMU ended on its own; it has left the pool\n", f.name);
    return report();
  }
  fmt::print("vm {}: {} received; powering off\n", f.name, sig == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  (void)(*control)->Execute("system_powerdown");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(f.grace_s);
  while (qemu->Running() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100ms);
  if (qemu->Running()) {
    (void)(*control)->Execute("quit", json::object(), 2s);
    const auto quit_until = std::chrono::steady_clock::now() + 5s;
    while (qemu->Running() && std::chrono::steady_clock::now() < quit_until) std::this_thread::sleep_for(50ms);
  }
  if (qemu->Running()) qemu->Stop(1s);
  fmt::print("vm {}: stopped; it has left the pool\n", f.name);
  return report();
}

void CommonPoolFlags(CLI::App* c, VmFlags& f) {
  c->add_option("--hv,--control", f.control, "The hypervisor's control socket (default: <run dir>/hv.ctl)");
  c->add_option("--weight", f.weight, "PAPR memory weight 0-255: higher loans less")->check(CLI::Range(0, 255));
  c->add_option("--pool-min", f.pool_min, "Never ask it below this much usable memory, e.g. 256M");
  c->add_option("--pool-max", f.pool_max, "Usable memory above this is always loaned, e.g. 1G");
}

}  // namespace

Runner AddVm(CLI::App& app) {
  auto f = std::make_shared<VmFlags>();
  auto* c = app.add_subcommand("vm", "QEMU virtual machines in the pool, ballooned through QMP");
  c->require_subcommand(1);
  auto* run = c->add_subcommand("run", "Start a QEMU guest and put it in the pool; Ctrl-C powers it off");
  run->add_option("name", f->name, "The VM's name in the pool")->required();
  run->add_option("--mem", f->mem, "Guest RAM, e.g. 512M")->required();
  run->add_option("--cpus", f->cpus, "Virtual CPUs")->capture_default_str()->check(CLI::Range(1, 64));
  run->add_option("--kernel", f->kernel, "Guest kernel (scripts/make-guest-image builds one with its initrd)");
  run->add_option("--initrd", f->initrd, "Guest initramfs");
  run->add_option("--append", f->append, "More kernel command line, e.g. cmm.fill=300M");
  run->add_option("--disk", f->disk, "A disk image to boot instead of a kernel");
  run->add_option("--workload", f->workloads,
                  "Run in the guest, as `cmm guest --workload` does: hog:SIZE[:RATE], unmovable:SIZE[:RATE], "
                  "cache:SIZE[:RATE], phases:/etc/cmm/FILE (needs an image with cmm-vm-workload)");
  run->add_option("--file", f->files,
                  "Copy a small file (a phases timeline) into the guest's /etc/cmm, through the kernel command line");
  run->add_option("--accel", f->accel, "auto (KVM only if a probe guest runs under it), kvm or tcg")
      ->capture_default_str();
  run->add_option("--run-dir", f->run_dir, "Where its QMP sockets and serial log go (default: <run dir>/vm-NAME)");
  run->add_option("--grace", f->grace_s, "Seconds between power-off and quit")->capture_default_str()->check(
      CLI::Range(0, 600));
  CommonPoolFlags(run, *f);
  auto* attach = c->add_subcommand("attach", "Put a running QEMU (with a virtio-balloon device) in the pool");
  attach->add_option("name", f->name, "The VM's name in the pool")->required();
  attach->add_option("--qmp", f->qmp, "Its QMP unix socket (-qmp unix:PATH,server=on,wait=off)")->required();
  attach->add_option("--pid", f->pid, "Its process (default: the QMP socket's peer)");
  CommonPoolFlags(attach, *f);
  c->footer(
      "Examples:\n  scripts/make-guest-image /tmp/guest\n"
      "  cmm vm run web1 --mem 512M --kernel /tmp/guest/vmlinuz --initrd /tmp/guest/initrd.img\n"
      "  cmm vm attach legacy1 --qmp /run/qemu/legacy1.qmp");
  return [f, run] { return run->parsed() ? VmRun(*f) : VmAttach(*f); };
}

}  // namespace cmm::cli
