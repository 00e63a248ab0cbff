#include "members/qemu/vm_adapter.h"

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

namespace {

// A VM between its handshake and its joining the pool: its follower may
// lose it meanwhile.
struct Joining {
  Mutex mu;
  bool lost GUARDED_BY(mu) = false;
  bool added GUARDED_BY(mu) = false;
};

}  // namespace

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
  // Its follower starts with the handshake done, before it joins the pool:
  // a QEMU that lies at once is lost before Add. Lost then, it must not be
  // added (it would stay, followed by no one); lost later, it is removed.
  auto joining = std::make_shared<Joining>();
  auto vm = VmMember::Attach(std::move(options), [&pool, joining](VmMember& m) {
    MutexLock lock(joining->mu);
    joining->lost = true;
    if (joining->added) pool.Remove(m);
  });
  if (!vm) return tl::unexpected(vm.error());
  if (auto ok = CheckSettings(name, (*vm)->ram_bytes(), settings); !ok) return tl::unexpected(ok.error());
  {
    MutexLock lock(joining->mu);
    if (joining->lost) {
      return Fail(ErrorCode::kUnavailable, fmt::format("QEMU at {} was lost as it attached: {}", asked.qmp_path,
                                                       (*vm)->lost_reason()));
    }
    if (auto added = pool_.Add(*vm, settings); !added) return tl::unexpected(added.error());
    joining->added = true;
  }
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
