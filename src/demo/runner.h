// One run of the demo scenario: `cmm hv` and the partitions as child
// processes with their sockets in a temporary directory, a sample each
// second (printed as a live view on a terminal, as a line otherwise), and
// an orderly stop: each partition returns its pages, then the hypervisor
// goes, then the directory.
#pragma once

#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "demo/child.h"
#include "demo/scenario.h"
#include "demo/summary.h"

namespace cmm::hv {
class TransientDomains;
}

namespace cmm::demo {

// For scenarios with VMs: the guest image (vmlinuz, initrd.img made by
// scripts/make-guest-image with cmm-vm-workload) and the accelerator.
struct VmKit {
  std::string image_dir;
  std::string accel = "tcg";
  // Not empty: the VMs are transient libvirt domains at this URI (`cmm
  // demo --libvirt`), managed by `cmm hv --libvirt`, instead of `cmm vm run`.
  std::string libvirt_uri;
};

class Run {
 public:
  // `exe`: the cmm binary; `stop`: set (by a signal handler) to end early.
  Run(const Scenario& s, std::string exe, bool balloon, double duration, const volatile sig_atomic_t& stop,
      VmKit kit = {});
  ~Run();

  // The summary; `ok` is false if a process failed or integrity broke. An
  // error says what could not be started.
  tl::expected<Summary, std::string> Go(bool& ok);
  // Has the hypervisor serve its web page at `address` (127.0.0.1:PORT,
  // 0: any free port); the run prints where. Before Go.
  void ServeWeb(std::string address) { http_ = std::move(address); }
  // Processes the VMs' kernels killed for want of memory, read from their
  // consoles after the run.
  uint64_t guest_oom_kills() const { return guest_oom_kills_; }
  // With libvirt: whether libvirt still listed a domain it made once the
  // run was over (it should not: they are transient).
  bool domains_left() const { return domains_left_; }

 private:
  bool WaitFor(const std::string& path) const;
  void Nap(int ms) const;
  std::string Log(const std::string& who) const;
  std::string Dead();
  std::optional<Sample> Take(double t);
  bool StopAll();  // true when every process ended with exit code 0
  std::vector<std::string> MemberArgv(const PartitionPlan& p) const;
  bool AsDomain(const PartitionPlan& p) const { return p.vm && !kit_.libvirt_uri.empty(); }
  // Its name in the pool: a domain's carries this run's pid, so that it
  // cannot meet a domain someone else runs.
  std::string MemberName(const PartitionPlan& p) const;
  std::string Serial(const PartitionPlan& p) const {
    return AsDomain(p) ? dir_ + "/" + p.name + ".console" : dir_ + "/vm-" + p.name + "/serial.log";
  }
  tl::expected<void, std::string> StartDomain(const PartitionPlan& p);
  // Integrity errors the member counted: a partition over its socket, a VM
  // in its workload's last report on the console.
  uint64_t IntegrityErrors(const PartitionPlan& p) const;

  const Scenario& s_;
  const std::string exe_;
  const bool balloon_;
  const double duration_;
  const volatile sig_atomic_t& stop_;
  const VmKit kit_;
  uint64_t guest_oom_kills_ = 0;
  std::vector<std::string> domain_names_;
  bool domains_left_ = false;
  std::string dir_;
  std::string http_;
  std::string url_;  // where the web page is, once the hypervisor says
  std::unique_ptr<Child> hv_;
  std::vector<std::unique_ptr<Child>> guests_;  // null for a domain
  std::unique_ptr<hv::TransientDomains> domains_;
};

}  // namespace cmm::demo
