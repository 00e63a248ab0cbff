#include "members/virtio/balloon_follow.h"

#include <algorithm>

namespace cmm::hv {

void BalloonFollow::Asked(uint64_t value, MemberClock::time_point now) {
  if (value < asked_) {
    // Only a guest still rising toward the earlier ask can go on rising; one
    // already there (or past it) has nothing left to follow upward.
    const uint64_t rising_to = actual_ < asked_ ? asked_ : 0;
    still_rising_to_ = now < late_until_ ? std::max(still_rising_to_, rising_to) : rising_to;
    late_until_ = now + kLateEvents;
  }
  if (value != asked_) took_back_since_asked_ = false;
  asked_ = value;
}

uint64_t BalloonFollow::Seen(uint64_t actual, MemberClock::time_point now) {
  const uint64_t ceiling = now < late_until_ ? std::max(asked_, still_rising_to_) : asked_;
  uint64_t taken_back = 0;
  if (actual > actual_ && actual > ceiling) taken_back = actual - std::max(actual_, ceiling);
  if (taken_back > 0) took_back_since_asked_ = true;
  actual_ = actual;
  return taken_back;
}

}  // namespace cmm::hv
