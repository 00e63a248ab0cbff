#include "sim/sim_member.h"

#include <algorithm>
#include <chrono>

namespace cmm::sim {

namespace {
constexpr uint64_t kOomStep = 1 << 20;  // the balloon gives back whole MiB on OOM
}  // namespace

SimMember::SimMember(const MemberSpec& spec, uint64_t seed)
    : name_(spec.name),
      ram_(spec.ram_bytes),
      rate_(spec.balloon_bytes_per_s),
      stall_from_(spec.stall_from_s),
      stall_to_(spec.stall_to_s),
      responsive_(spec.responsive),
      workload_(spec.shape, spec.ram_bytes, seed, &spec.samples) {
  free_ = ram_;
}

hv::MemberState SimMember::Observe() const {
  hv::MemberState s;
  s.ram_bytes = FromUnsigned<Bytes>(ram_);
  s.backing_bytes = FromUnsigned<Bytes>(touched_);
  s.loaned_bytes = FromUnsigned<Bytes>(loaned_);
  s.stats.free_bytes = FromUnsigned<Bytes>(free_);
  s.stats.used_bytes = FromUnsigned<Bytes>(used_);
  s.stats.cache_bytes = FromUnsigned<Bytes>(cache_);
  s.stats.oom_events = oom_events_;
  s.stats.taken = hv::MemberClock::time_point(std::chrono::seconds(now_s_));
  s.stats.loaned_bytes = FromUnsigned<Bytes>(loaned_);  // free_ and cache_ are after its balloon moved
  s.responsive = responsive_;
  return s;
}

void SimMember::Assign(const hv::Assignment& a) {
  if (!joined_) {
    joined_ = true;
    loaned_ = AsUnsigned(a.target_loaned_bytes);
    free_ = ram_ - loaned_;
  } else if (AsUnsigned(a.target_loaned_bytes) != target_) {
    ++target_changes_;
  }
  target_ = AsUnsigned(a.target_loaned_bytes);
}

void SimMember::Step(uint32_t t_s, uint32_t dt_s) {
  now_s_ = t_s;
  const Want want = workload_.At(t_s);
  wanted_ = want.used + want.cache;
  want_used_ = want.used;
  oom_given_ = 0;
  // The workload first: what does not fit is taken back from the balloon.
  uint64_t usable = ram_ - loaned_;
  if (want.used > usable && loaned_ > 0) {
    const uint64_t lack = want.used - usable;
    const uint64_t give = std::min(loaned_, (lack + kOomStep - 1) / kOomStep * kOomStep);
    loaned_ -= give;
    oom_given_ = give;
    ++oom_events_;
    usable = ram_ - loaned_;
  }
  used_ = std::min(want.used, usable);
  // Then the balloon, toward its target.
  const bool stalled = t_s >= stall_from_ && t_s < stall_to_;
  if (responsive_ && !stalled) {
    const uint64_t step = rate_ * dt_s;
    if (target_ > loaned_) {
      loaned_ += std::min({step, target_ - loaned_, usable - used_});
    } else if (target_ < loaned_) {
      loaned_ -= std::min(step, loaned_ - target_);
    }
    usable = ram_ - loaned_;
  }
  cache_ = std::min(want.cache, usable - used_);
  free_ = usable - used_ - cache_;
  // Touched memory stays backed until the balloon takes it.
  touched_ = std::min(std::max(touched_, used_ + cache_), usable);
  touched_unballooned_ = std::min(ram_, std::max(touched_unballooned_, wanted_));
}

bool SimMember::short_of_memory(double low_free) const {
  return static_cast<double>(want_used_) + low_free * static_cast<double>(ram_) >
         static_cast<double>(ram_ - loaned_);
}

}  // namespace cmm::sim
