#include "members/virtio/unresponsive.h"

#include <algorithm>

#include <fmt/format.h>

namespace cmm::hv {

namespace {
constexpr uint64_t kMiB = 1 << 20;
}

void AddReason(std::string& note, const std::string& why) {
  if (why.empty()) return;
  if (!note.empty()) note += "; ";
  note += why;
}

std::string WhyUnresponsive(const BalloonWatch& w, const BalloonFollow& follow, MemberClock::time_point now) {
  std::string note;
  const auto limit = w.period * w.stale_periods;
  // Stats come at most once a second: never call them stale sooner than 3 s.
  if (now - w.stats_seen > std::max<std::chrono::milliseconds>(limit, std::chrono::seconds(3))) {
    AddReason(note, !w.stats_ever ? "no guest stats (is the virtio_balloon driver loaded?)"
                                  : fmt::format("guest stats stopped {} s ago",
                                                std::chrono::duration_cast<std::chrono::seconds>(now - w.stats_seen)
                                                    .count()));
  }
  const uint64_t actual = follow.actual(), asked = follow.asked();
  const uint64_t gap = actual > asked ? actual - asked : asked - actual;
  // Above its ask after taking memory back on OOM, the guest uses what it
  // holds: that is not a balloon that does not follow. A new ask counts anew.
  const bool holding_what_it_took = actual > asked && follow.took_back_since_asked();
  if (gap > kMiB && now - w.moved > limit && !holding_what_it_took) {
    AddReason(note, fmt::format("balloon at {} MiB does not move toward {} MiB", actual / kMiB, asked / kMiB));
  }
  return note;
}

}  // namespace cmm::hv
