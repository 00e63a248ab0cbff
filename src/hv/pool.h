// The shared pool: its members of every kind, the operator's terms for
// each, and what the policy last asked of each. It knows members only
// through the Member interface; the rebalancer calls Rebalance on its clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "hv/member.h"
#include "hv/policy.h"

namespace cmm::hv {

struct PoolOptions {
  uint64_t pool_bytes = 0;
  // When set, the pool is resized before each rebalance from the sum of
  // the members' backing (`--pool auto`).
  std::function<uint64_t(uint64_t members_backing)> sizer;
  PolicyConfig policy;  // pool_bytes is taken from above
};

// A change asked by the operator; absent fields stay as they are.
struct SettingsChange {
  std::optional<uint8_t> weight;
  std::optional<uint64_t> min_bytes;
  std::optional<uint64_t> max_bytes;
};

// Settings that fit a member of `ram` bytes: min and max within its RAM,
// min not above max. EINVAL with the reason otherwise.
tl::expected<void, Refusal> CheckSettings(const std::string& name, uint64_t ram, const MemberSettings& s);

struct MemberView {
  std::string name;
  MemberKind kind = MemberKind::kPartition;
  uint64_t ram_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t target_loaned_bytes = 0;
  MemberSettings settings;
  MemberStats stats;
  bool responsive = true;
  std::string note;
  std::string backing_source;
  uint64_t own_bytes = 0;
  int pid = 0;
  HcallCounts counts;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);

  // EEXIST for a name in use (by a member of any kind). The member gets its
  // first assignment (nothing to loan yet) before this returns.
  tl::expected<void, Refusal> Add(std::shared_ptr<Member> member, MemberSettings settings);
  // Leaves at once; a member that is not (or no longer) in the pool is ignored.
  void Remove(const Member& member);
  // Runs the policy over every member's last state and assigns each its target.
  void Rebalance();
  // `cmm hv set`: ENOENT for an unknown name, EINVAL for values that do not
  // fit the member's RAM or each other.
  tl::expected<MemberSettings, Refusal> Configure(const std::string& name, const SettingsChange& change);

  uint64_t pool_bytes() const { return pool_bytes_.load(); }
  std::vector<MemberView> Snapshot() const;
  std::shared_ptr<Member> Find(const std::string& name) const;

 private:
  struct Entry {
    std::shared_ptr<Member> member;
    MemberSettings settings;
    uint64_t target_loaned = 0;
    uint64_t oom_seen = 0;
  };
  PoolOptions options_;
  std::atomic<uint64_t> pool_bytes_;
  mutable std::mutex mu_;  // guards entries_
  std::map<std::string, Entry> entries_;
};

}  // namespace cmm::hv
