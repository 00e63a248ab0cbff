#include "members/qemu/vm_adapter.h"

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

VmAdapter::~VmAdapter() {
  MutexLock lock(mu_);
  for (const auto& vm : vms_) pool_.Remove(*vm);
  vms_.clear();
}

Result<std::shared_ptr<VmMember>> VmAdapter::Attach(VmOptions options, MemberSettings settings) {
  Reap();
  if (const auto other = pool_.Find(options.name)) {
    return Fail(ErrorCode::kExists, fmt::format("a {} named {} is already in the pool", KindName(other->kind()),
                                                      options.name));
  }
  options.period = period_;
  const VmOptions asked = options;
  const std::string name = options.name;
  Pool& pool = pool_;
  auto vm = VmMember::Attach(std::move(options), [&pool](VmMember& m) { pool.Remove(m); });
  if (!vm) return tl::unexpected(vm.error());
  if (auto ok = CheckSettings(name, (*vm)->ram_bytes(), settings); !ok) return tl::unexpected(ok.error());
  if (auto added = pool_.Add(*vm, settings); !added) return tl::unexpected(added.error());
  spdlog::info("vm {}: QEMU {} (pid {}) attached", name, (*vm)->qemu_version(), (*vm)->pid());
  if (on_attached_) on_attached_(asked, (*vm)->pid());
  MutexLock lock(mu_);
  vms_.push_back(*vm);
  return *vm;
}

void VmAdapter::Reap() {
  std::vector<std::shared_ptr<VmMember>> gone;
  {
    MutexLock lock(mu_);
    for (auto it = vms_.begin(); it != vms_.end();) {
      if ((*it)->lost()) {
        gone.push_back(std::move(*it));
        it = vms_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Destroyed outside the lock: each joins its follower thread.
}

}  // namespace cmm::hv
