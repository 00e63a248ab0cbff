#include "pool/peak_memory.h"

#include <algorithm>
#include <cmath>

namespace cmm::hv {

void PeakMemory::Note(Bytes used, double dt_s, bool pressed) {
  if (window_s_ <= 0 || (used >= peak_ && pressed)) {
    peak_ = used;
    return;
  }
  if (used >= peak_) return;  // above it without pressure: followed in time
  const double above = static_cast<double>((peak_ - used).value());
  const double kept = above * std::exp(-std::max(dt_s, 0.0) / window_s_);
  peak_ = used + Bytes(static_cast<int64_t>(kept));
}

}  // namespace cmm::hv
