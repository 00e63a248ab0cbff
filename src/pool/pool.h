// The shared pool: its members of every kind, the operator's terms for
// each, and what the policy last asked of each. It knows members only
// through the Member interface; the rebalancer calls Rebalance on its clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "core/mutex.h"
#include "pool/demand_report.h"
#include "pool/giveback_reserve.h"
#include "pool/member.h"
#include "pool/peak_memory.h"
#include "pool/pressure.h"
#include "pool/policy.h"

namespace cmm::hv {

struct PoolOptions {
  Bytes pool_bytes;
  // When set, the pool is resized before each rebalance from the sum of
  // the members' backing (`--pool auto`).
  std::function<Bytes(Bytes members_backing)> sizer;
  PolicyConfig policy;  // pool_bytes is taken from above
  // The policy itself; tests put a broken one here to see the checks fail.
  std::function<PolicyDecision(const PolicyConfig&, std::span<const PolicyInput>)> decide = Decide;
  // The operator's terms kept from before a restart of the daemon: when
  // this gives terms for a joining member's name (and they fit its RAM),
  // they replace the member's own.
  std::function<std::optional<MemberSettings>(const std::string& name)> kept_terms;
  // Told, outside the pool's lock, of each member's terms as they stand
  // (on joining, on `cmm hv set`) and of its leaving: what the daemon keeps.
  std::function<void(const std::string& name, const MemberSettings& terms)> on_terms;
  std::function<void(const std::string& name)> on_left;
};

// Whether the pool can be met, from the last rebalance.
struct Feasibility {
  Bytes pool_bytes;
  Bytes floors_bytes;
  Bytes shortfall_bytes;  // 0: it can be met
  // Kept back from what is handed out for OOM give-backs (pool/giveback_reserve.h).
  Bytes giveback_reserve_bytes{};
};

// "pool 512 MiB cannot be met: members' floors need 768 MiB; lower
// min_mem_mb or grow the pool", or "" when it can be met.
std::string ShortfallMessage(const Feasibility& f);

// A change asked by the operator; absent fields stay as they are.
struct SettingsChange {
  std::optional<uint8_t> weight;
  std::optional<Bytes> min_bytes;
  std::optional<Bytes> max_bytes;
};

// The usable memory a member of `ram` bytes is kept between: its floor
// (min, within max) and its ceiling (max, within its RAM).
struct Bounds {
  Bytes min, max;
};
Bounds BoundsOf(Bytes ram, const MemberSettings& s);

// Settings that fit a member of `ram` bytes: min and max within its RAM,
// min not above max. EINVAL with the reason otherwise.
Result<void> CheckSettings(const std::string& name, Bytes ram, const MemberSettings& s);

struct MemberView {
  std::string name;
  MemberKind kind = MemberKind::kPartition;
  Bytes ram_bytes;
  Bytes backing_bytes;
  Bytes loaned_bytes;
  Bytes target_loaned_bytes;
  MemberSettings settings;
  MemberStats stats;
  bool responsive = true;
  std::string note;
  std::string backing_source;
  Bytes own_bytes;
  int pid = 0;
  HcallCounts counts;
  std::string uri;
};

// How far a member's loan is from its target (positive: still to inflate),
// in the policy's settle bands; within one band it is at its target.
double BandsToGo(const MemberView& m);
bool AtTarget(const MemberView& m);

class Pool {
 public:
  explicit Pool(PoolOptions options);

  // EEXIST for a name in use (by a member of any kind). The member gets its
  // first assignment (nothing to loan yet) before this returns.
  Result<void> Add(std::shared_ptr<Member> member, MemberSettings settings);
  // Leaves at once; a member that is not (or no longer) in the pool is ignored.
  void Remove(const Member& member);
  // Runs the policy over every member's last state and assigns each its target.
  void Rebalance();
  // `cmm hv set`: ENOENT for an unknown name, EINVAL for values that do not
  // fit the member's RAM or each other.
  Result<MemberSettings> Configure(const std::string& name, const SettingsChange& change);

  Bytes pool_bytes() const { return Bytes(pool_bytes_.load()); }
  Feasibility feasibility() const;

  // Whether a member of `ram` bytes with these terms could join now with
  // at least its floor, without taking the pool over.
  bool HasRoomFor(Bytes ram, const MemberSettings& s) const;
  // Memory promised to members waiting to join: the policy runs as if the
  // pool were that much smaller, so the others make room for them first.
  void Reserve(Bytes bytes);
  std::vector<MemberView> Snapshot() const;
  std::shared_ptr<Member> Find(const std::string& name) const;
  // A standing remark about something the pool does not manage (a domain
  // skipped for want of a balloon), shown in status until withdrawn with
  // an empty text. `about` keys it.
  void Note(const std::string& about, std::string text);
  std::vector<std::string> notes() const;  // in the order of their keys

 private:
  struct Entry {
    std::shared_ptr<Member> member;
    MemberSettings settings;
    Bytes target_loaned;
    uint64_t oom_seen = 0;
    Bytes entitled;  // at most what it may back since its last target
    Bytes used{};    // what it used at the last round (pool/demand_report.h)
    Bytes loaned_seen{};  // its confirmed loan at the last round (its admission target before the first)
    // Its confirmed loan at the last round, its loan as it joined before
    // the first: a loan below both and below its target fell on its own.
    Bytes loaned_observed{};
    MemberClock::time_point stats_seen{};  // when its last stats reading was taken
    PeakMemory peak{0};  // what it used at its recent peak, by its stats readings
    bool pressed = false;  // met an OOM event, was short of memory or under pressure since its last reading
    PressureSeen pressure{};  // its pressure counters at its last reading
    Bytes used_at_reading{};  // its use at its last stats reading
    double last_rate = 0;     // how fast its use grew between its last two readings
    // The growth it keeps up: the lesser of its last two rates, or its last
    // (at a first rise, for the time between readings) while it reclaims
    // with no free memory left.
    double growth_per_s = 0;
    int rounds_unread = 0;  // rounds since it joined without a stats reading from it
  };
  // The loan a joining member starts with: what the pool has no room for,
  // within its floor and ceiling, and never below what it uses (`in_use`)
  // and a buffer: a guest that joins running keeps what it uses.
  Bytes AdmissionTarget(Bytes ram, const MemberSettings& s, Bytes in_use) const REQUIRES(mu_);
  // Add, Remove and Configure under the lock; the hooks are called after.
  Result<void> Admit(std::shared_ptr<Member> member, const MemberSettings& settings) EXCLUDES(mu_);
  bool Drop(const Member& member) EXCLUDES(mu_);
  Result<MemberSettings> Reconfigure(const std::string& name, const SettingsChange& change) EXCLUDES(mu_);
  void NoteFeasibility(const Feasibility& now) REQUIRES(mu_);  // says a change in the log
  // Says in the log when the members' use (`demand`, the sum of their
  // `used`) goes beyond the pool, with names, and when it is back.
  void NoteDemand(Bytes demand) REQUIRES(mu_);

  PoolOptions options_;
  std::atomic<int64_t> pool_bytes_;  // Bytes
  // The entry of that name, or null.
  Entry* Lookup(const std::string& name) REQUIRES(mu_);
  const Entry* Lookup(const std::string& name) const REQUIRES(mu_);

  mutable Mutex mu_;  // guards what follows
  // In joining order; a vector so that a round over thousands of members
  // walks memory in line. `index_` finds one by name.
  std::vector<Entry> entries_ GUARDED_BY(mu_);
  std::unordered_map<std::string, size_t> index_ GUARDED_BY(mu_);
  std::vector<PolicyInput> inputs_ GUARDED_BY(mu_);  // reused every round: a round allocates nothing
  Bytes entitled_ GUARDED_BY(mu_);  // sum of the entries' entitled
  Bytes reserved_ GUARDED_BY(mu_);
  Feasibility feasibility_ GUARDED_BY(mu_);
  std::map<std::string, std::string> notes_ GUARDED_BY(mu_);
  bool demand_over_ GUARDED_BY(mu_) = false;
  GiveBackReserve giveback_reserve_ GUARDED_BY(mu_);
};

}  // namespace cmm::hv
