// An independent check of the pool's promise, written from the issue's
// words and not from the policy's code: the sum over members of what each
// may back (RAM less its confirmed loan, plus what it has been granted and
// not yet taken) never exceeds the pool, at any instant, except for memory
// members take back on their own (OOM give-back), a pool that shrank, or a
// pool that cannot be met (its floors alone above it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/sim_member.h"

namespace cmm::sim::testing {

class PoolChecker {
 public:
  struct Seen {
    uint64_t ram = 0, loaned = 0, target = 0, min = 0, oom_events = 0;
    bool responsive = true;
  };

  // What members may back now, each by its confirmed loan and its target.
  static uint64_t MayBack(const Seen& s) { return s.ram - std::min(s.loaned, s.target); }

  // Before a round: remembers every member's loan and target.
  void BeforeRound(const std::vector<std::shared_ptr<SimMember>>& members, const std::vector<uint64_t>& mins) {
    before_.clear();
    for (size_t i = 0; i < members.size(); ++i) before_[members[i]->name()] = See(*members[i], mins[i]);
  }

  // After a round on a pool of `pool` bytes: while a member acts on either
  // its old or its new target, it may back RAM less the smaller of its loan
  // and both targets. Returns a violation, or "".
  std::string AfterRound(const std::vector<std::shared_ptr<SimMember>>& members, uint64_t pool) {
    uint64_t before = 0, during = 0;
    for (const auto& m : members) {
      const Seen& b = before_.at(m->name());
      before += MayBack(b);
      during += m->ram() - std::min({b.loaned, b.target, m->target()});
    }
    if (during > std::max(pool, before)) {
      return "a round granted memory not yet confirmed elsewhere: members may back " + std::to_string(during) +
             " bytes, the pool is " + std::to_string(pool) + ", before the round " + std::to_string(before);
    }
    return "";
  }

  // After the members lived a period: none may back more than before it,
  // except by taking memory back on OOM (its OOM count then rose).
  std::string AfterStep(const std::vector<std::shared_ptr<SimMember>>& members, const std::vector<uint64_t>& mins) {
    for (size_t i = 0; i < members.size(); ++i) {
      const auto it = before_.find(members[i]->name());
      if (it == before_.end()) continue;
      const Seen now = See(*members[i], mins[i]);
      const Seen& was = it->second;
      const uint64_t was_back = was.ram - std::min({was.loaned, was.target, now.target});
      if (MayBack(now) > was_back && now.oom_events == was.oom_events) {
        return members[i]->name() + " came to back more without an OOM give-back";
      }
    }
    return "";
  }

  // The floors alone: each responsive member's min, each other member's
  // present entitlement.
  static uint64_t Floors(const std::vector<std::shared_ptr<SimMember>>& members, const std::vector<uint64_t>& mins) {
    uint64_t floors = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      const Seen s = See(*members[i], mins[i]);
      floors += s.responsive ? s.min : MayBack(s);
    }
    return floors;
  }

 private:
  static Seen See(const SimMember& m, uint64_t min) {
    const hv::MemberState st = m.Observe();
    return {m.ram(), AsUnsigned(st.loaned_bytes), m.target(), min, st.stats.oom_events, st.responsive};
  }
  std::map<std::string, Seen> before_;
};

}  // namespace cmm::sim::testing
