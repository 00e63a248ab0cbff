// The CMM balloon controller (SPEC S2–S13). A step function: Poll() does
// one round of the poll loop when it is due; the rest are entry points the
// guest kernel's notifier chains, the control files and compaction call.
// No threads inside; a PollThread drives Poll().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/balloon.h"
#include "core/hotplug_lock.h"
#include "core/mutex.h"
#include "core/params.h"
#include "core/ports.h"

namespace cmm {

class ControlFiles;

struct ControllerPorts {
  Hypervisor* hypervisor = nullptr;  // null: none present (simulate only)
  GuestMemory& memory;
  GuestKernel& kernel;
  PollThread& thread;
  Clock& clock;
  LogSink& log;
};

// What a status view shows, read without stopping anything.
struct ControllerSnapshot {
  Pages loaned;
  Pages loaned_target;
  Pages oom_freed;
  Pages totalram;
  bool disabled = false;
  bool simulate = false;
  bool hotplug_held = false;
  uint64_t isolated = 0;
};

// One jiffy at the HZ=250 of Debian's kernels: the shortest sleep.
inline constexpr std::chrono::milliseconds kSchedulerTick{4};

class Controller final : public Pollable, public OomListener, public RebootListener, public MemoryListener {
 public:
  static constexpr int kMemoryNotifierPriority = 1;

  Controller(const ParamValues& params, const ControllerPorts& ports);
  ~Controller() override;
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // S9: returns 0 or a positive errno (EOPNOTSUPP without CMO).
  int Start();
  // S10: every loaned page is returned.
  void Stop();

  // S3: one step of the poll loop.
  TimePoint Poll(TimePoint now) override;
  // S2: compute loaned_target for this round.
  void ComputeTarget();
  // S4/S5: returns the number of pages not done.
  Pages Inflate(Pages nr);
  Pages Deflate(Pages nr);

  void OnOom(Pages& freed) override;                 // S6
  void OnReboot(RebootAction action) override;       // S11
  void OnMemoryEvent(MemoryAction action) override;  // S12

  // S13 compaction: isolate a balloon page, then migrate it (0 or EBUSY),
  // or put it back.
  bool IsolatePage(Pfn page);
  void PutbackPage(Pfn page);
  int MigratePage(Pfn old_page, Pfn new_page);

  // S8: the text written to the `disable` parameter; 0 or a positive errno.
  int WriteDisable(std::string_view text);

  Params& params() { return params_; }
  const Params& params() const { return params_; }
  ControlFiles& files() { return *files_; }
  const Balloon& balloon() const { return balloon_; }
  PageGeometry geometry() const { return geometry_; }
  uint64_t cmo_page_size() const { return cmo_page_size_; }

  Pages loaned() const { return Pages(loaned_.load()); }
  Pages loaned_target() const { return Pages(loaned_target_.load()); }
  Pages oom_freed() const { return Pages(oom_freed_.load()); }
  bool disabled() const { return disabled_.load(); }
  bool thread_running() const { return thread_running_.load(); }
  // Administrator write of oom_freed_kb (S7): reset to 0.
  void ResetOomFreed() { oom_freed_.store(0); }
  ControllerSnapshot Snapshot() const;
  // The address of every CMO page the balloon holds loaned, for a
  // hypervisor that has to learn them again.
  std::vector<uint64_t> LoanedCmoAddresses() const;

 private:
  enum class Phase { kStopped, kStarting, kSleeping, kHotplugPause };

  // Mark every CMO page of `page` with `flags`, in address order; on a
  // failure undo the ones done, in reverse, with `undo`. Returns the rc.
  papr::Rc SetPageState(Pfn page, uint64_t flags, uint64_t undo);
  papr::Rc SetLoaned(Pfn page) { return SetPageState(page, papr::kPageSetLoaned, papr::kPageSetActive); }
  papr::Rc SetActive(Pfn page) { return SetPageState(page, papr::kPageSetActive, papr::kPageSetLoaned); }
  // The batched paths (cmm's extension): many pages per hcall, with the
  // same end state as one SetPageState per page.
  uint64_t CmoPagesPerPage() const;
  uint64_t BatchPages() const;  // pages per batched call; 0: one call per CMO page
  void AddressesOf(std::span<const Pfn> pages, std::vector<uint64_t>& out) const;
  Pages InflateBatched(Pages nr, uint64_t batch);
  // A page loaned: into the balloon, out of the usable total; and back.
  void TakeIntoBalloon(Pfn page);
  void GiveBack(Pfn page);
  Pages DeflateBatched(Pages nr, uint64_t batch);
  void Round();
  int StartThread() REQUIRES(admin_mu_);
  void StopThread() REQUIRES(admin_mu_);
  template <class... Args>
  void Debug(std::string_view format, const Args&... args);
  TimePoint After(uint32_t seconds) const;

  Params params_;
  ControllerPorts ports_;
  const PageGeometry geometry_;
  const uint64_t cmo_page_size_;
  Balloon balloon_;
  HotplugLock hotplug_;
  std::unique_ptr<ControlFiles> files_;

  std::atomic<int64_t> loaned_{0};
  std::atomic<int64_t> loaned_target_{0};
  std::atomic<int64_t> oom_freed_{0};

  Mutex admin_mu_;  // serializes start/stop/disable/restart; never held by Poll
  std::atomic<bool> disabled_;
  std::atomic<bool> thread_running_{false};

  // Poll-thread state, touched only from Poll() and, while the thread is
  // stopped, from StartThread().
  Phase phase_ = Phase::kStopped;
  TimePoint deadline_{};
};

}  // namespace cmm
