// The guest kernel's notifier chains and the registry of the driver's
// control files: what the controller registers with at start (S9).
#pragma once

#include <vector>

#include "core/mutex.h"
#include "core/ports.h"

namespace cmm::guest {

// A cache that can give pages back under memory pressure.
class Shrinker {
 public:
  virtual ~Shrinker() = default;
  // Frees up to `wanted` pages back to the allocator; returns how many.
  virtual uint64_t Shrink(uint64_t wanted) = 0;
};

class KernelServices final : public GuestKernel {
 public:
  int RegisterOom(OomListener& l) override;
  void UnregisterOom(OomListener& l) override;
  int RegisterReboot(RebootListener& l) override;
  void UnregisterReboot(RebootListener& l) override;
  int RegisterAttributes(ControlFiles& files) override;
  void UnregisterAttributes(ControlFiles& files) override;
  int RegisterMemory(MemoryListener& l, int priority) override;
  void UnregisterMemory(MemoryListener& l) override;

  int RegisterShrinker(Shrinker& s);
  void UnregisterShrinker(Shrinker& s);
  // Asks each shrinker in turn until `wanted` pages are freed; returns the total.
  uint64_t RunShrinkers(uint64_t wanted);

  // Calls the OOM chain; returns the pages its listeners freed.
  Pages NotifyOom();
  void NotifyReboot(RebootAction action);
  // Calls the memory chain, highest priority first.
  void NotifyMemory(MemoryAction action);
  // The registered control files, or null before start / after stop.
  ControlFiles* files() const;

 private:
  struct MemoryEntry {
    MemoryListener* listener;
    int priority;
  };
  mutable Mutex mu_;  // guards the lists (not held while calling out)
  std::vector<OomListener*> oom_ GUARDED_BY(mu_);
  std::vector<RebootListener*> reboot_ GUARDED_BY(mu_);
  std::vector<MemoryEntry> memory_ GUARDED_BY(mu_);
  std::vector<Shrinker*> shrinkers_ GUARDED_BY(mu_);
  ControlFiles* files_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace cmm::guest
