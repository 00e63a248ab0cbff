// How much of the pool to keep back for OOM give-backs: the most the
// members took back on their own (an OOM notifier, deflate-on-oom) in any
// one round of the last `rounds`. A pool that keeps that much unassigned
// absorbs the next give-back of that size without going over, and one
// that sees none keeps nothing back. Pure: fed once a round.
#pragma once

#include <cstddef>
#include <vector>

#include "core/units.h"

namespace cmm::hv {

class GiveBackReserve {
 public:
  explicit GiveBackReserve(size_t rounds = 300) : ring_(rounds == 0 ? 1 : rounds, Bytes(0)) {}
  // What the members took back on OOM since the last round.
  void Add(Bytes taken_back);
  Bytes value() const { return max_; }

 private:
  std::vector<Bytes> ring_;
  size_t at_ = 0;
  Bytes max_{};
};

}  // namespace cmm::hv
