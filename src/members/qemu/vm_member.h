// A QEMU virtual machine as a pool member: the adapter that pushes its
// target with QMP `balloon`, reads `guest-stats` and follows BALLOON_CHANGE
// events, and measures its backing from its guest-RAM memfd (or its
// resident guest-RAM mapping). Each VM has a thread of its own that owns
// the QMP connection; Assign only records the target and wakes it.
//
// A VM whose stats stop updating for 3 periods, or whose balloon does not
// move toward its target for 3 periods, is unresponsive: the policy then
// counts on nothing from it. `actual` rising above what was asked is the
// guest deflating on OOM (deflate-on-oom): counted as that VM's OOM event.
// When QEMU goes away (the connection closes), `on_lost` is called once.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

#include "core/mutex.h"
#include "members/virtio/balloon_follow.h"
#include "members/qemu/qmp_client.h"
#include "pool/member.h"

namespace cmm::hv {

struct VmOptions {
  std::string name;
  std::string qmp_path;
  pid_t pid = 0;  // 0: the process at the other end of the QMP socket
  std::chrono::milliseconds period{1000};
  int stale_periods = 3;
  // The attach handshake, all its steps together.
  std::chrono::milliseconds attach_timeout{8000};
};

class VmMember final : public Member {
 public:
  using LostHandler = std::function<void(VmMember&)>;
  // Connects, finds the balloon device, asks for guest stats every period
  // (at least 1 s) and measures guest RAM; then follows the VM. kUnavailable
  // when no QEMU answers there, kInvalid for one that cannot be driven (no
  // balloon device), kNotFound when its process is gone.
  static Result<std::shared_ptr<VmMember>> Attach(VmOptions options, LostHandler on_lost);
  // The same over a QMP connection already open (QmpClient::Open).
  static Result<std::shared_ptr<VmMember>> Attach(VmOptions options, std::unique_ptr<QmpClient> qmp,
                                                  LostHandler on_lost);
  ~VmMember() override;  // stops following; QEMU keeps running

  const std::string& name() const override { return options_.name; }
  MemberKind kind() const override { return MemberKind::kVm; }
  Bytes ram_bytes() const override { return FromUnsigned<Bytes>(ram_bytes_); }
  MemberState Observe() const override;
  void Assign(const Assignment& a) override;

  pid_t pid() const { return pid_; }
  bool lost() const { return lost_.load(); }
  // Why it left the pool ("" while it follows).
  std::string lost_reason() const {
    MutexLock lock(mu_);
    return lost_reason_;
  }
  const std::string& qemu_version() const { return version_; }

 private:
  VmMember(VmOptions options, std::unique_ptr<QmpClient> qmp, pid_t pid, uint64_t ram, std::string balloon_path,
           int memfd, LostHandler on_lost);
  // The follower thread: FollowLoop, then leaving the pool when QEMU is
  // gone or the loop failed for any reason.
  void Follow();
  void FollowLoop();
  // One period's reading: balloon, stats, memory, responsiveness. False: lost.
  bool Tick(MemberClock::time_point now);
  bool Push();
  void OnBalloon(uint64_t actual, MemberClock::time_point now);
  void Measure();
  void HandleEvents();

  const VmOptions options_;
  std::unique_ptr<QmpClient> qmp_;  // used by the follow thread only
  const pid_t pid_;
  const uint64_t ram_bytes_;  // QMP's numbers, unsigned, within this adapter
  const std::string balloon_path_;  // QOM path of the virtio-balloon device
  const int memfd_;                 // -1: measured from smaps
  std::string version_;
  const MemberClock::time_point attached_;  // stats are awaited from then
  LostHandler on_lost_;
  int wake_fd_ = -1;  // eventfd: a new target, or stop

  mutable Mutex mu_;  // guards everything below
  uint64_t want_loaned_ GUARDED_BY(mu_) = 0;  // from the last assignment
  // The balloon value last sent (guest memory QEMU asks for) and the guest
  // memory now, from QEMU.
  BalloonFollow follow_ GUARDED_BY(mu_);
  MemberStats stats_ GUARDED_BY(mu_);
  uint64_t oom_taken_back_ GUARDED_BY(mu_) = 0;  // since the last period's log line
  int64_t stats_update_ GUARDED_BY(mu_) = -1;  // QEMU's "last-update" of the stats last read
  MemberClock::time_point actual_moved_ GUARDED_BY(mu_){};  // when actual last changed or a new value was pushed
  uint64_t backing_ GUARDED_BY(mu_) = 0;
  uint64_t own_ GUARDED_BY(mu_) = 0;
  bool responsive_ GUARDED_BY(mu_) = true;
  std::string note_ GUARDED_BY(mu_);
  std::string bad_reply_ GUARDED_BY(mu_);
  std::string lost_reason_ GUARDED_BY(mu_);  // this period's reply that failed its checks, or ""

  std::atomic<bool> stopping_{false};
  std::atomic<bool> lost_{false};
  std::thread thread_;
};

}  // namespace cmm::hv
