// What a VM's balloon was asked and where the guest's memory is, and which
// rises of that memory are the guest taking pages back on OOM
// (deflate-on-oom) rather than the guest following an ask.
#pragma once

#include <algorithm>
#include <cstdint>

#include "pool/member.h"

namespace cmm::hv {

class BalloonFollow {
 public:
  // How late QEMU's BALLOON_CHANGE may still answer an earlier ask: it sends
  // the event at most once a second.
  static constexpr auto kLateEvents = std::chrono::seconds(2);

  // At attach the guest is where it is, and that is taken as asked.
  explicit BalloonFollow(uint64_t actual = 0) : asked_(actual), actual_(actual) {}

  // A new balloon value (guest memory) was sent at `now`.
  void Asked(uint64_t value, MemberClock::time_point now);
  // The guest's memory is `actual` at `now`; returns the bytes it took back
  // on OOM with this change (0 when it follows an ask, or falls).
  uint64_t Seen(uint64_t actual, MemberClock::time_point now);

  uint64_t asked() const { return asked_; }
  uint64_t actual() const { return actual_; }
  // What the balloon holds of `ram`: the loan the pool counts.
  Bytes loaned(uint64_t ram) const { return FromUnsigned<Bytes>(ram - std::min(actual_, ram)); }
  // The guest took memory back on OOM since the last ask: it holds more
  // than it was asked because it uses it, not because it does not follow.
  bool took_back_since_asked() const { return took_back_since_asked_; }

 private:
  uint64_t asked_;
  uint64_t actual_;
  // After a lowering, the earlier, higher ask the guest had not yet reached:
  // an event sent before the guest saw the lowering may still rise toward it.
  uint64_t still_rising_to_ = 0;
  MemberClock::time_point late_until_{};
  bool took_back_since_asked_ = false;
};

}  // namespace cmm::hv
