#include "demo/runner.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ctl/client.h"
#include "ctl/partition_status.h"
#include "hv/status.h"
#include "members/libvirt/domain_xml.h"
#include "members/libvirt/transient_domains.h"
#include "members/qemu/console.h"
#include "members/virtio/guest_cmdline.h"

namespace cmm::demo {

using Clock = std::chrono::steady_clock;

Run::Run(const Scenario& s, std::string exe, bool balloon, double duration, const volatile sig_atomic_t& stop,
         VmKit kit)
    : s_(s), exe_(std::move(exe)), balloon_(balloon), duration_(duration), stop_(stop), kit_(std::move(kit)) {}

std::vector<std::string> Run::MemberArgv(const PartitionPlan& p) const {
  std::vector<std::string> argv;
  if (p.vm) {
    argv = {exe_, "vm", "run", p.name, "--mem", fmt::format("{}M", p.ram_bytes >> 20), "--kernel",
            kit_.image_dir + "/vmlinuz", "--initrd", kit_.image_dir + "/initrd.img", "--control", dir_ + "/hv.ctl",
            "--run-dir", dir_ + "/vm-" + p.name, "--accel", kit_.accel, "--grace", "1"};
    // With the balloon off, the policy may ask nothing of it.
    if (!balloon_) argv.insert(argv.end(), {"--pool-min", fmt::format("{}M", p.ram_bytes >> 20)});
    if (!p.phases_json.empty()) argv.insert(argv.end(), {"--file", dir_ + "/" + p.name + ".json"});
    for (const auto& w : p.workloads) {
      argv.insert(argv.end(), {"--workload", w.rfind("phases:", 0) == 0 ? "phases:/etc/cmm/" + w.substr(7) : w});
    }
    return argv;
  }
  argv = {exe_, "guest", "--name", p.name, "--mem", std::to_string(p.ram_bytes),
          "--hv", dir_ + "/hv.hcall", "--socket", dir_ + "/" + p.name + ".sock",
          "--param", fmt::format("min_mem_mb={}", std::max<uint64_t>(16, p.ram_bytes >> 24))};
  if (!balloon_) argv.insert(argv.end(), {"--param", "disable=1"});
  for (const auto& w : p.workloads) {
    argv.insert(argv.end(), {"--workload", w.rfind("phases:", 0) == 0 ? "phases:" + dir_ + "/" + w.substr(7) : w});
  }
  return argv;
}

std::string Run::MemberName(const PartitionPlan& p) const {
  return AsDomain(p) ? fmt::format("cmm-demo-{}-{}", getpid(), p.name) : p.name;
}

tl::expected<void, std::string> Run::StartDomain(const PartitionPlan& p) {
  std::vector<std::string> workloads;
  for (const auto& w : p.workloads) workloads.push_back(w.rfind("phases:", 0) == 0 ? "phases:/etc/cmm/" + w.substr(7) : w);
  std::vector<vm::GuestFile> files;
  if (!p.phases_json.empty()) files.push_back({p.name + ".json", p.phases_json});
  auto cmdline = vm::GuestCmdline("console=ttyS0 panic=-1", workloads, files);
  if (!cmdline) return tl::unexpected(cmdline.error().message);
  hv::DomainSpec spec;
  spec.name = MemberName(p);
  spec.mem_bytes = p.ram_bytes;
  spec.type = kit_.accel == "kvm" ? "kvm" : "qemu";
  const std::string image = std::filesystem::absolute(kit_.image_dir).string();
  spec.kernel = image + "/vmlinuz";
  spec.initrd = image + "/initrd.img";
  spec.cmdline = *cmdline;
  spec.console_path = Serial(p);
  hv::MemberSettings terms{};
  // With the balloon off, the policy may ask nothing of it.
  if (!balloon_) terms.min_bytes = Bytes(static_cast<int64_t>(p.ram_bytes));
  spec.terms = terms;
  if (auto made = domains_->Create(spec.name, hv::DomainXml(spec)); !made) {
    return tl::unexpected(made.error().message);
  }
  domain_names_.push_back(spec.name);
  return {};
}

uint64_t Run::IntegrityErrors(const PartitionPlan& p) const {
  if (!p.vm) {
    const auto r = ctl::Call(dir_ + "/" + p.name + ".sock", {{"op", "status"}});
    return r && r->value("ok", false) ? r->get<ctl::PartitionStatus>().integrity_errors : 0;
  }
  return vm::ReadConsole(Serial(p)).integrity_errors;
}

Run::~Run() {
  StopAll();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void Run::Nap(int ms) const {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

bool Run::WaitFor(const std::string& path) const {
  for (int i = 0; i < 500 && !stop_; ++i) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::filesystem::exists(path);
}

tl::expected<Summary, std::string> Run::Go(bool& ok) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/cmm-demo-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return tl::unexpected(fmt::format("cannot make a temporary directory {}", tmpl));
  }
  dir_ = tmpl;
  if (!kit_.libvirt_uri.empty()) {
    // libvirt's QEMU (user libvirt-qemu) writes the consoles here.
    chmod(dir_.c_str(), 0755);
    auto domains = hv::TransientDomains::Connect(kit_.libvirt_uri);
    if (!domains) return tl::unexpected(domains.error().message);
    domains_ = std::make_unique<hv::TransientDomains>(std::move(*domains));
  }
  std::vector<std::string> hv_argv{exe_, "hv", "--pool", std::to_string(s_.pool_bytes), "--socket", dir_ + "/hv.hcall",
                                   "--control", dir_ + "/hv.ctl", "--period-ms", "500"};
  if (!http_.empty()) hv_argv.insert(hv_argv.end(), {"--http", http_});
  // Only the domains this run made say manage="yes": no other is touched.
  if (domains_) hv_argv.insert(hv_argv.end(), {"--libvirt", kit_.libvirt_uri, "--libvirt-select", "tagged"});
  if (auto hv = Child::Spawn(hv_argv, dir_ + "/hv.log")) hv_ = std::make_unique<Child>(std::move(*hv));
  if (!hv_ || !WaitFor(dir_ + "/hv.ctl")) return tl::unexpected(fmt::format("the hypervisor did not start:\n{}", Log("hv")));
  if (!http_.empty()) {
    // The hypervisor says its address once it serves (a port it picked).
    const std::regex said("watch the pool at (http://127\\.0\\.0\\.1:[0-9]+/)");
    for (int i = 0; i < 250 && url_.empty() && !stop_ && hv_->Running(); ++i) {
      std::ifstream log(dir_ + "/hv.log");
      const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      if (std::smatch m; std::regex_search(text, m, said)) {
        url_ = m[1];
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (url_.empty()) return tl::unexpected(fmt::format("the hypervisor's web page did not start:\n{}", Log("hv")));
    fmt::print("watch the pool in a browser: {}\n", url_);
    std::fflush(stdout);
  }
  for (const auto& p : s_.partitions) {
    if (AsDomain(p)) {
      if (auto made = StartDomain(p); !made) return tl::unexpected(made.error());
      guests_.push_back(nullptr);
      continue;
    }
    if (!p.phases_json.empty()) std::ofstream(dir_ + "/" + p.name + ".json") << p.phases_json;
    auto c = Child::Spawn(MemberArgv(p), dir_ + "/" + p.name + ".log");
    if (!c) return tl::unexpected(fmt::format("cannot start {}", p.name));
    guests_.push_back(std::make_unique<Child>(std::move(*c)));
  }
  // A partition is up when its socket is; a VM when it is in the pool.
  auto in_pool = [&](const std::string& name) {
    const auto r = ctl::Call(dir_ + "/hv.ctl", {{"op", "status"}});
    if (!r || !r->value("ok", false)) return false;
    for (const auto& m : r->get<hv::HvStatus>().partitions) {
      if (m.name == name) return true;
    }
    return false;
  };
  for (size_t i = 0; i < s_.partitions.size(); ++i) {
    const PartitionPlan& p = s_.partitions[i];
    bool up = false;
    if (p.vm) {
      for (int k = 0; k < 1500 && !stop_ && !up && Dead().empty(); ++k) {
        up = in_pool(MemberName(p));
        if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    } else {
      up = WaitFor(dir_ + "/" + p.name + ".sock");
    }
    if (!up) {
      return tl::unexpected(fmt::format("{} did not start:\n{}", p.name,
                                        AsDomain(p) ? Log("hv") : Log(p.name)));
    }
  }
  if (!domain_names_.empty()) {
    fmt::print("libvirt domains at {} (virsh list shows them while this runs): {}\n", kit_.libvirt_uri,
               fmt::join(domain_names_, ", "));
    std::fflush(stdout);
  }

  const bool tty = isatty(STDOUT_FILENO) == 1;
  const char* mode = balloon_ ? "" : "(balloon off) ";
  SummaryBuilder summary;
  const auto start = Clock::now();
  ok = true;
  for (;;) {
    Nap(1000);
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    if (const auto sample = Take(t)) {
      summary.Add(*sample);
      if (tty) {
        fmt::print("\x1b[H\x1b[2J{}{}{}\n", mode, FormatFrame(*sample, duration_),
                   url_.empty() ? "" : "\nin a browser: " + url_);
      } else {
        fmt::print("{}{}\n", mode, FormatLine(*sample));
      }
      std::fflush(stdout);
    }
    if (const std::string dead = Dead(); !dead.empty()) {
      fmt::print(stderr, "cmm demo: {} exited early:\n{}\n", dead, Log(dead));
      ok = false;
      break;
    }
    if (stop_ || t >= duration_) break;
  }
  // Integrity as each partition counted it, then an orderly stop.
  uint64_t errors = 0;
  for (const auto& p : s_.partitions) {
    if (!p.vm) errors += IntegrityErrors(p);
  }
  if (!StopAll()) ok = false;
  // A VM's workload reports on its console, last when it stops.
  for (const auto& p : s_.partitions) {
    if (!p.vm) continue;
    const vm::ConsoleReading console = vm::ReadConsole(Serial(p));
    errors += console.integrity_errors;
    guest_oom_kills_ += console.oom_kills;
  }
  if (errors != 0) ok = false;
  return summary.Finish(errors);
}

std::string Run::Log(const std::string& who) const {
  std::ifstream f(dir_ + "/" + who + ".log");
  std::string line, tail;
  std::vector<std::string> lines;
  while (std::getline(f, line)) lines.push_back(line);
  for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) tail += "  " + lines[i] + "\n";
  return tail;
}

std::string Run::Dead() {
  if (hv_ && !hv_->Running()) return "hv";
  for (size_t i = 0; i < guests_.size(); ++i) {
    const bool running = guests_[i] ? guests_[i]->Running() : domains_->Running(MemberName(s_.partitions[i]));
    if (!running) return s_.partitions[i].name;
  }
  return "";
}

std::optional<Sample> Run::Take(double t) {
  const auto r = ctl::Call(dir_ + "/hv.ctl", {{"op", "status"}});
  if (!r || !r->value("ok", false)) return std::nullopt;
  const auto hv_status = r->get<hv::HvStatus>();
  Sample s;
  s.t_s = t;
  s.pool_bytes = hv_status.pool_bytes;
  for (size_t i = 0; i < s_.partitions.size(); ++i) {
    PartitionSample p;
    p.name = s_.partitions[i].name;
    p.ram_bytes = s_.partitions[i].ram_bytes;
    // Memory use as the partition counts it now (with the balloon off it
    // does not poll, so the hypervisor has no stats from it)...
    Result<nlohmann::json> g = Fail(ErrorCode::kNotFound, "a VM has no control socket");
    if (!s_.partitions[i].vm) g = ctl::Call(dir_ + "/" + p.name + ".sock", {{"op", "status"}});
    if (g && g->value("ok", false)) {
      const auto st = g->get<ctl::PartitionStatus>();
      p.cache_bytes = st.cache_pages * st.page_size;
      const uint64_t in_use = (st.movable_pages + st.unmovable_pages) * st.page_size;
      p.used_bytes = in_use - std::min(in_use, p.cache_bytes);
      p.free_bytes = st.free_pages * st.page_size;
      // Failed allocations and the balloon's OOM give-backs alike: either
      // way the partition was short of memory.
      p.oom_events = st.oom_events + st.oom_give_backs;
    }
    // ...and its loans and backing as the hypervisor sees them.
    const std::string member = MemberName(s_.partitions[i]);
    for (const auto& v : hv_status.partitions) {
      if (v.name != member) continue;
      p.loaned_bytes = v.loaned_bytes;
      p.target_loaned_bytes = v.target_loaned_bytes;
      p.backing_bytes = v.backing_bytes;
      p.pages_loaned = v.hcalls.pages_loaned;
      p.pages_returned = v.hcalls.pages_returned;
      if (s_.partitions[i].vm) {  // a VM's memory use as its guest-stats said it
        p.free_bytes = v.free_bytes;
        p.cache_bytes = v.cache_bytes;
        // Less what it could reclaim (MemAvailable), and less the balloon:
        // with deflate-on-oom its pages count as used in the guest.
        p.used_bytes = v.used_bytes - std::min(v.used_bytes, p.loaned_bytes);
        p.oom_events = v.oom_events;
      }
    }
    p.rss_shmem_bytes = s_.partitions[i].vm ? p.backing_bytes : guests_[i]->RssShmem();
    s.partitions.push_back(p);
  }
  return s;
}

// True when every process ended with exit code 0.
bool Run::StopAll() {
  bool clean = true;
  for (auto& g : guests_) {
    if (g) clean &= g->Stop(std::chrono::seconds(30)) == 0;
  }
  guests_.clear();
  if (domains_) {
    for (const std::string& name : domain_names_) domains_->Destroy(name);
    for (const std::string& name : domain_names_) domains_left_ |= domains_->Listed(name);
  }
  if (hv_) clean &= hv_->Stop(std::chrono::seconds(10)) == 0;
  hv_.reset();
  return clean;
}

}  // namespace cmm::demo
