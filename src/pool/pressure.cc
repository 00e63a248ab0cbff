#include "pool/pressure.h"

#include <algorithm>

namespace cmm::hv {

namespace {

// What a count grew by; nothing when it fell (it started over).
template <class T>
T Grew(T now, T before) {
  return now >= before ? now - before : T{};
}

}  // namespace

Pressure ReadPressure(const MemberStats& now, PressureSeen& seen, Bytes step, Bytes page) {
  Pressure p;
  if (seen.known) {
    const Bytes swapped = Grew(now.swapped_in, seen.swapped_in);
    const Bytes reclaimed = Grew(now.reclaimed, seen.reclaimed);
    const uint64_t faults = Grew(now.major_faults, seen.major_faults);
    const uint64_t faults_in_step =
        static_cast<uint64_t>(std::max<int64_t>(1, step.value() / std::max<int64_t>(1, page.value())));
    p.swapping = swapped > Bytes(0) && swapped >= step;
    p.reclaiming = (reclaimed > Bytes(0) && reclaimed >= step) || faults >= faults_in_step;
  }
  seen = {true, now.swapped_in, now.major_faults, now.reclaimed};
  return p;
}

}  // namespace cmm::hv
