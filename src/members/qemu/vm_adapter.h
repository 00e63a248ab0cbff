// The pool's adapter for QEMU VMs: attaches a running QEMU through its QMP
// socket as a member, and takes it out of the pool the moment QEMU goes
// away. Holds every attached VM's follower.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <tl/expected.hpp>

#include "core/mutex.h"
#include "pool/pool.h"
#include "members/qemu/vm_member.h"

namespace cmm::hv {

class VmAdapter {
 public:
  // Told of each VM that joined, with how it was reached (the daemon keeps
  // it, to attach it again after a restart).
  using AttachedHandler = std::function<void(const VmOptions& options, pid_t pid)>;
  VmAdapter(Pool& pool, std::chrono::milliseconds period, AttachedHandler on_attached = {})
      : pool_(pool), period_(period), on_attached_(std::move(on_attached)) {}
  ~VmAdapter();  // the VMs leave the pool; their QEMUs keep running

  // EEXIST for a name in the pool, EHOSTUNREACH when QEMU cannot be driven,
  // EINVAL for settings that do not fit its RAM (CheckSettings).
  Result<std::shared_ptr<VmMember>> Attach(VmOptions options, MemberSettings settings);
  // Forgets the VMs whose QEMU went away (they have left the pool already).
  void Reap();

 private:
  Pool& pool_;
  const std::chrono::milliseconds period_;
  const AttachedHandler on_attached_;
  Mutex mu_;
  std::vector<std::shared_ptr<VmMember>> vms_ GUARDED_BY(mu_);
};

}  // namespace cmm::hv
