#include "core/hotplug_lock.h"

namespace cmm {

void HotplugLock::BeginRemove() {
  MutexLock lock(mu_);
  while (held_.load()) released_.Wait(lock);
  held_.store(true, std::memory_order_release);
  occurred_.store(true, std::memory_order_release);
}

void HotplugLock::EndRemove() {
  {
    MutexLock lock(mu_);
    held_.store(false, std::memory_order_release);
  }
  released_.NotifyAll();
}

HotplugLock::Round HotplugLock::BeginRound() {
  MutexLock lock(mu_);
  if (held_.load()) return Round::kInProgress;
  if (occurred_.load()) {
    occurred_.store(false, std::memory_order_release);
    return Round::kOccurred;
  }
  return Round::kClear;
}

}  // namespace cmm
