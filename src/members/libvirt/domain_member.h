// A libvirt domain as a pool member: the adapter reads its memory through
// libvirt each period (Tick) and pushes its target with
// virDomainSetMemoryFlags, through a small interface (DomainControl) so the
// rules below are tested with a fake and a fake clock.
//
// The rules are those of a QEMU VM: a domain whose guest stats stop
// updating for 3 periods, or whose balloon does not move toward its target
// for 3 periods, is unresponsive (the policy counts on nothing from it);
// the balloon rising above what was asked is the guest deflating on OOM
// (autodeflate), counted as its OOM event. A paused domain is held as it
// is: unresponsive, with the reason, until it runs again.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "core/mutex.h"
#include "members/libvirt/domain_memory.h"
#include "members/virtio/balloon_follow.h"
#include "pool/member.h"

namespace cmm::hv {

// One domain, as libvirt lets it be driven.
class DomainControl {
 public:
  virtual ~DomainControl() = default;
  virtual Result<DomainMemory> Memory() = 0;
  // The guest memory to leave it (RAM less the balloon), live.
  virtual Result<void> SetGuestMemory(uint64_t bytes) = 0;
};

struct DomainOptions {
  std::string name;
  std::string uri;  // the libvirt connection it came from
  uint64_t ram_bytes = 0;
  uint64_t actual_bytes = 0;  // the guest memory when it joined: its loan is kept as it is
  pid_t pid = 0;  // its QEMU, as libvirt records it; 0: unknown
  std::string backing_source;  // how its backing is measured: "memfd", "smaps", "none"
  std::chrono::milliseconds period{1000};
  int stale_periods = 3;
  // When a reading comes back (tests give their own time).
  std::function<MemberClock::time_point()> clock = [] { return MemberClock::now(); };
};

class DomainMember final : public Member {
 public:
  // `wake` is called (from Assign) when a new target waits to be pushed:
  // the adapter's thread then calls Push. Measure reads the host memory
  // behind its RAM; it is given so the rules are tested without a QEMU.
  using Measure = std::function<std::pair<uint64_t, uint64_t>()>;  // backing, QEMU's own
  DomainMember(DomainOptions options, std::unique_ptr<DomainControl> control, std::function<void()> wake,
               Measure measure, MemberClock::time_point now);

  const std::string& name() const override { return options_.name; }
  MemberKind kind() const override { return MemberKind::kDomain; }
  Bytes ram_bytes() const override { return FromUnsigned<Bytes>(options_.ram_bytes); }
  MemberState Observe() const override;
  void Assign(const Assignment& a) override;

  // The adapter's thread: one period's reading, and a pending target sent.
  void Tick(MemberClock::time_point now);
  void Push(MemberClock::time_point now);
  // The guest memory now, read (Tick) or told by libvirt's balloon-change
  // event, which was `posted` by the event thread: an event posted before
  // the last reading came back is older than it, and is not taken.
  void OnBalloon(uint64_t actual_bytes, MemberClock::time_point now);
  void OnBalloonEvent(uint64_t actual_bytes, MemberClock::time_point posted, MemberClock::time_point now);
  void SetPaused(bool paused);
  // While libvirt is away (its daemon restarting) nothing is asked of the
  // domain and nothing read; it keeps its loan as it is. Then a new handle.
  void SetAway(bool away);
  void Rebind(std::unique_ptr<DomainControl> control);
  const DomainOptions& options() const { return options_; }

 private:
  const DomainOptions options_;
  std::unique_ptr<DomainControl> control_;  // the adapter's thread only
  const std::function<void()> wake_;
  const Measure measure_;
  const MemberClock::time_point joined_;

  mutable Mutex mu_;  // guards everything below
  uint64_t want_loaned_ GUARDED_BY(mu_) = 0;
  BalloonFollow follow_ GUARDED_BY(mu_);
  MemberStats stats_ GUARDED_BY(mu_);
  int64_t stats_update_ GUARDED_BY(mu_) = -1;
  MemberClock::time_point actual_moved_ GUARDED_BY(mu_);
  MemberClock::time_point read_back_ GUARDED_BY(mu_){};  // when the last reading came back
  uint64_t backing_ GUARDED_BY(mu_) = 0;
  uint64_t own_ GUARDED_BY(mu_) = 0;
  bool paused_ GUARDED_BY(mu_) = false;
  bool away_ GUARDED_BY(mu_) = false;
  bool responsive_ GUARDED_BY(mu_) = true;
  std::string note_ GUARDED_BY(mu_);
  std::string failed_ GUARDED_BY(mu_);  // the last libvirt call that failed, or ""
};

}  // namespace cmm::hv
