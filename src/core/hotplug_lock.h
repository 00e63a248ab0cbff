// The hotplug lock of S12: held from "going offline" until "offline" or
// "offline cancelled", plus the flag saying a hot-remove has happened.
// Any thread may release it (the hot-remove path, not its owner, decides).
#pragma once

#include <atomic>

#include "core/mutex.h"

namespace cmm {

class HotplugLock {
 public:
  // "Going offline": waits for a previous hot-remove, then holds the lock
  // and records that one occurred.
  void BeginRemove();
  // "Offline" or "offline cancelled".
  void EndRemove();

  enum class Round { kClear, kInProgress, kOccurred };
  // The poll loop's check: in progress, or occurred (the flag is consumed), or clear.
  Round BeginRound();
  // The inflate loop's check: true while no hot-remove is running or pending.
  bool Quiet() const {
    return !held_.load(std::memory_order_acquire) && !occurred_.load(std::memory_order_acquire);
  }
  bool held() const { return held_.load(std::memory_order_acquire); }

 private:
  Mutex mu_;
  CondVar released_;
  std::atomic<bool> held_{false};      // written under mu_
  std::atomic<bool> occurred_{false};  // written under mu_
};

}  // namespace cmm
