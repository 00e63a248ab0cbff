// The real Clock: the monotonic steady clock.
#pragma once

#include "core/ports.h"

namespace cmm {

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace cmm
