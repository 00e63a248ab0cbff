// A member's memory of its peaks: what it used at its recent peak, which
// rises at once to a higher use met under pressure (an OOM event, short of
// memory: a burst that outran the pool) and falls back toward its use now
// over a slow window (an exponential decay with that time constant). Use
// that grew without pressure was followed in time and is not remembered
// (a slow leak that is reset keeps no room for its old top). A member that
// burst a minute ago keeps room for its next burst; one that has not for
// many windows keeps only its headroom. Pure: time is passed in.
#pragma once

#include "core/units.h"

namespace cmm::hv {

class PeakMemory {
 public:
  explicit PeakMemory(double window_s) : window_s_(window_s) {}
  // Its use at a stats reading `dt_s` seconds after the last one, and
  // whether it was under pressure since the last.
  void Note(Bytes used, double dt_s, bool pressed);
  Bytes peak() const { return peak_; }

 private:
  double window_s_;
  Bytes peak_{};
};

}  // namespace cmm::hv
