#include "pool/giveback_reserve.h"

#include <algorithm>

namespace cmm::hv {

void GiveBackReserve::Add(Bytes taken_back) {
  const Bytes coming = std::max(taken_back, Bytes(0));
  const Bytes leaving = ring_[at_];
  ring_[at_] = coming;
  at_ = (at_ + 1) % ring_.size();
  if (coming >= max_) {
    max_ = coming;
  } else if (leaving == max_) {
    // The largest left the window: look again (a few hundred values).
    max_ = *std::max_element(ring_.begin(), ring_.end());
  }
}

}  // namespace cmm::hv
