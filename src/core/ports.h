// The narrow interfaces through which the CMM controller sees the world.
// Real implementations live in guest/ (and later hv/); tests use fakes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string_view>

#include "core/units.h"
#include "papr/papr.h"

namespace cmm {

using TimePoint = std::chrono::steady_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
};

// The hypervisor's hcalls as the partition sees them.
class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  // Whether the platform offers Cooperative Memory Overcommit at all.
  virtual bool HasCmo() const = 0;
  // The granularity of page states (cmo_page_size), a power of two.
  virtual uint64_t CmoPageSize() const = 0;
  virtual papr::Rc GetMpp(papr::MppData& out) = 0;
  virtual papr::Rc PageInit(uint64_t flags, uint64_t address) = 0;

  // cmm's batched H_PAGE_INIT: `flags` applied to each address in order,
  // stopping at the first failure. `done` counts the pages that succeeded.
  struct BatchResult {
    uint64_t done = 0;
    papr::Rc rc = papr::kSuccess;
  };
  // How many CMO pages one batched call may carry; 0: not offered.
  virtual uint64_t MaxBatch() const { return 0; }
  virtual BatchResult PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses) {
    BatchResult r;
    for (const uint64_t a : addresses) {
      if ((r.rc = PageInit(flags, a)) != papr::kSuccess) break;
      ++r.done;
    }
    return r;
  }
  // Two batches in flight: SubmitBatch hands one over and may return before
  // the hypervisor has done it; CompleteBatch waits for the oldest one
  // submitted and returns its result, in the order they were submitted.
  // Here a batch is done when submitted; a remote hypervisor overrides both.
  virtual void SubmitBatch(uint64_t flags, std::span<const uint64_t> addresses) {
    submitted_.push_back(PageInitBatch(flags, addresses));
  }
  virtual BatchResult CompleteBatch() {
    const BatchResult r = submitted_.front();
    submitted_.pop_front();
    return r;
  }

 private:
  std::deque<BatchResult> submitted_;
};

// Memory zones, as Linux has them; hot-added memory goes to Movable.
enum class Zone : uint8_t { kNormal, kMovable };

// The guest kernel's page allocator and managed-page accounting.
class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  virtual PageGeometry Geometry() const = 0;
  // Number of page frames guest RAM can ever hold (online or not).
  virtual uint64_t PageSpan() const = 0;
  // The balloon's allocation (S4): movable, may run the shrinkers once,
  // never retries, never uses reserves, never starts the OOM path.
  virtual std::optional<Pfn> AllocBalloonPage() = 0;
  virtual void FreePage(Pfn page) = 0;
  // adjust_managed_page_count: the usable total of the page's zone.
  virtual void AdjustTotalram(Pfn page, Pages delta) = 0;
  virtual Pages Totalram() const = 0;
  virtual Zone ZoneOf(Pfn page) const = 0;
};

// Something a poll thread drives: Poll(now) does what is due and returns
// when it next wants to be called.
class Pollable {
 public:
  virtual ~Pollable() = default;
  virtual TimePoint Poll(TimePoint now) = 0;
};

// The kernel thread that runs the poll loop (kthread_run/kthread_stop).
class PollThread {
 public:
  virtual ~PollThread() = default;
  // Returns 0 or a positive errno.
  virtual int Start(Pollable& body) = 0;
  // Asks the thread to stop, wakes it, and waits until it has stopped.
  virtual void Stop() = 0;
};

// Kernel log lines (printk).
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Info(std::string_view line) = 0;
  virtual void Error(std::string_view line) = 0;
};

// --- Notifier chains the driver registers with (S9) ---

class OomListener {
 public:
  virtual ~OomListener() = default;
  // Free what you can; add the number of pages freed to `freed`.
  virtual void OnOom(Pages& freed) = 0;
};

enum class RebootAction : uint8_t { kRestart, kHalt, kPowerOff };
class RebootListener {
 public:
  virtual ~RebootListener() = default;
  virtual void OnReboot(RebootAction action) = 0;
};

enum class MemoryAction : uint8_t {
  kGoingOnline, kOnline, kCancelOnline, kGoingOffline, kOffline, kCancelOffline,
};
class MemoryListener {
 public:
  virtual ~MemoryListener() = default;
  virtual void OnMemoryEvent(MemoryAction action) = 0;
};

class ControlFiles;

// Registration points of the guest kernel. Register* return 0 or a
// positive errno.
class GuestKernel {
 public:
  virtual ~GuestKernel() = default;
  virtual int RegisterOom(OomListener& l) = 0;
  virtual void UnregisterOom(OomListener& l) = 0;
  virtual int RegisterReboot(RebootListener& l) = 0;
  virtual void UnregisterReboot(RebootListener& l) = 0;
  virtual int RegisterAttributes(ControlFiles& files) = 0;
  virtual void UnregisterAttributes(ControlFiles& files) = 0;
  // Higher priority runs earlier; CMM registers with priority 1 (late).
  virtual int RegisterMemory(MemoryListener& l, int priority) = 0;
  virtual void UnregisterMemory(MemoryListener& l) = 0;
};

}  // namespace cmm
