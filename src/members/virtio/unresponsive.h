// When a virtio_balloon guest cannot be counted on, for the wings that
// drive one (QEMU over QMP, libvirt's domains): its stats stopped updating
// (or never came), or its balloon does not move toward what it was asked,
// each for `stale_periods` periods. A guest that took memory back on OOM
// (deflate-on-oom) and holds more than it was asked is using that memory:
// it is not called unresponsive for it until it is asked anew.
#pragma once

#include <chrono>
#include <string>

#include "members/virtio/balloon_follow.h"
#include "pool/member.h"

namespace cmm::hv {

struct BalloonWatch {
  std::chrono::milliseconds period{1000};
  int stale_periods = 3;
  MemberClock::time_point stats_seen{};  // its last new stats, or when it joined
  bool stats_ever = false;               // any stats at all since it joined
  MemberClock::time_point moved{};       // when its balloon last moved, or was asked anew
};

// "" when it can be counted on; else why not, for its status note.
std::string WhyUnresponsive(const BalloonWatch& w, const BalloonFollow& follow, MemberClock::time_point now);

// Appends `why` to a note, "; " between reasons.
void AddReason(std::string& note, const std::string& why);

}  // namespace cmm::hv
