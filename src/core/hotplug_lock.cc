#include "core/hotplug_lock.h"

namespace cmm {

void HotplugLock::BeginRemove() {
  std::unique_lock lock(mu_);
  released_.wait(lock, [&] { return !held_.load(); });
  held_.store(true, std::memory_order_release);
  occurred_.store(true, std::memory_order_release);
}

void HotplugLock::EndRemove() {
  {
    std::lock_guard lock(mu_);
    held_.store(false, std::memory_order_release);
  }
  released_.notify_all();
}

HotplugLock::Round HotplugLock::BeginRound() {
  std::lock_guard lock(mu_);
  if (held_.load()) return Round::kInProgress;
  if (occurred_.load()) {
    occurred_.store(false, std::memory_order_release);
    return Round::kOccurred;
  }
  return Round::kClear;
}

}  // namespace cmm
