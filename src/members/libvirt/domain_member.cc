#include "members/libvirt/domain_member.h"

#include "members/virtio/unresponsive.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

namespace {
constexpr uint64_t kMiB = 1 << 20;
}

DomainMember::DomainMember(DomainOptions options, std::unique_ptr<DomainControl> control, std::function<void()> wake,
                           Measure measure, MemberClock::time_point now)
    : options_(std::move(options)),
      control_(std::move(control)),
      wake_(std::move(wake)),
      measure_(std::move(measure)),
      joined_(now),
      follow_(options_.actual_bytes == 0 ? options_.ram_bytes : std::min(options_.actual_bytes, options_.ram_bytes)),
      actual_moved_(now) {}

MemberState DomainMember::Observe() const {
  MutexLock lock(mu_);
  MemberState s;
  s.ram_bytes = FromUnsigned<Bytes>(options_.ram_bytes);
  s.backing_bytes = FromUnsigned<Bytes>(backing_);
  s.loaned_bytes = follow_.loaned(options_.ram_bytes);
  s.stats = stats_;
  s.responsive = responsive_;
  s.note = note_;
  s.backing_source = options_.backing_source;
  s.own_bytes = FromUnsigned<Bytes>(own_);
  s.pid = options_.pid;
  s.uri = options_.uri;
  return s;
}

void DomainMember::Assign(const Assignment& a) {
  {
    MutexLock lock(mu_);
    if (AsUnsigned(a.target_loaned_bytes) == want_loaned_) return;
    want_loaned_ = AsUnsigned(a.target_loaned_bytes);
  }
  if (wake_) wake_();
}

void DomainMember::OnBalloon(uint64_t actual_bytes, MemberClock::time_point now) {
  MutexLock lock(mu_);
  actual_bytes = std::min(actual_bytes, options_.ram_bytes);
  if (actual_bytes == follow_.actual()) return;
  if (const uint64_t taken_back = follow_.Seen(actual_bytes, now); taken_back > 0) {
    ++stats_.oom_events;
    spdlog::warn("domain {}: the guest took back {} MiB on OOM (autodeflate); {} OOM events in all", options_.name,
                 taken_back / kMiB, stats_.oom_events);
  }
  actual_moved_ = now;
}

void DomainMember::OnBalloonEvent(uint64_t actual_bytes, MemberClock::time_point posted, MemberClock::time_point now) {
  {
    MutexLock lock(mu_);
    if (posted < read_back_) return;
  }
  OnBalloon(actual_bytes, now);
}

void DomainMember::SetAway(bool away) {
  MutexLock lock(mu_);
  away_ = away;
  // Back: QEMU kept the balloon's target meanwhile; the balloon is given
  // its periods again from now.
  if (!away) actual_moved_ = options_.clock();
}

void DomainMember::Rebind(std::unique_ptr<DomainControl> control) { control_ = std::move(control); }

void DomainMember::SetPaused(bool paused) {
  MutexLock lock(mu_);
  paused_ = paused;
}

void DomainMember::Push(MemberClock::time_point now) {
  uint64_t value;
  {
    MutexLock lock(mu_);
    if (paused_ || away_) return;  // nothing is asked of a paused domain, nor through an absent libvirt
    // libvirt refuses 0: the guest keeps at least a MiB.
    value = std::max<uint64_t>(options_.ram_bytes - std::min(want_loaned_, options_.ram_bytes), kMiB);
    if (value == follow_.asked()) return;
  }
  const auto r = control_->SetGuestMemory(value);
  MutexLock lock(mu_);
  if (!r) {
    if (failed_ != r.error().message) spdlog::warn("domain {}: {}", options_.name, r.error().message);
    failed_ = r.error().message;
    return;
  }
  failed_.clear();
  follow_.Asked(value, now);
  actual_moved_ = now;
}

void DomainMember::Tick(MemberClock::time_point now) {
  {
    MutexLock lock(mu_);
    if (away_) {
      responsive_ = false;
      note_ = fmt::format("libvirt at {} is away; its loan is kept as it is", options_.uri);
      return;
    }
  }
  const auto memory = control_->Memory();
  const auto back = options_.clock();
  const auto [backing, own] = measure_ ? measure_() : std::pair<uint64_t, uint64_t>{0, 0};
  if (memory) OnBalloon(memory->actual_bytes, now);
  MutexLock lock(mu_);
  read_back_ = std::max(read_back_, back);
  backing_ = backing;
  own_ = own;
  if (!memory) {
    if (failed_ != memory.error().message) spdlog::warn("domain {}: {}", options_.name, memory.error().message);
    failed_ = memory.error().message;
  } else if (memory->last_update != 0 && memory->last_update != stats_update_) {
    const uint64_t usable = memory->usable_bytes.value_or(memory->available_bytes.value_or(0));
    const uint64_t available = memory->available_bytes.value_or(0);
    stats_.free_bytes = FromUnsigned<Bytes>(std::min(memory->unused_bytes.value_or(0), available));
    stats_.cache_bytes = FromUnsigned<Bytes>(memory->disk_caches_bytes.value_or(0));
    stats_.used_bytes = FromUnsigned<Bytes>(available - std::min(available, usable));
    stats_.taken = now;
    stats_.loaned_bytes = follow_.loaned(options_.ram_bytes);
    stats_.swapped_in = FromUnsigned<Bytes>(memory->swap_in_bytes.value_or(0));
    stats_.major_faults = memory->major_faults.value_or(0);
    stats_update_ = memory->last_update;
  }
  // Why it cannot be counted on, if it cannot.
  std::string note = "paused";
  if (!paused_) {
    const BalloonWatch watch{options_.period, options_.stale_periods,
                             stats_.taken == MemberClock::time_point{} ? joined_ : stats_.taken, stats_update_ >= 0,
                             actual_moved_};
    note = WhyUnresponsive(watch, follow_, now);
    AddReason(note, failed_);
  }
  const bool responsive = note.empty();
  if (responsive != responsive_) {
    if (responsive) {
      spdlog::info("domain {}: responsive again", options_.name);
    } else {
      spdlog::warn("domain {}: unresponsive: {}; the policy counts on nothing from it", options_.name, note);
    }
  }
  responsive_ = responsive;
  note_ = std::move(note);
}

}  // namespace cmm::hv
