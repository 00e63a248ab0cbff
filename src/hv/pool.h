// The shared pool: the registered partitions, what each is asked to loan,
// and the H_GET_MPP answer for each.
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

#include "hv/hcall_stats.h"
#include "hv/hv_partition.h"
#include "hv/policy.h"
#include "proto/messages.h"

namespace cmm::hv {

struct PoolOptions {
  uint64_t pool_bytes = 0;
  // When set, the pool is resized before each rebalance from the sum of
  // the partitions' backing (`--pool auto`).
  std::function<uint64_t(uint64_t partitions_backing)> sizer;
  uint64_t cmo_page_size = 4096;
  bool batch = true;  // offer the batched page-state call
  FaultPlan faults;
  PolicyConfig policy;  // pool_bytes is taken from above
};

// What the policy is told about a partition: from its registration, then
// from `cmm hv set`.
struct PartitionSettings {
  uint8_t weight = 0;      // PAPR mem_weight 0-255
  uint64_t min_bytes = 0;  // never asked to go below this much usable memory
  uint64_t max_bytes = 0;  // 0: the RAM size; it always loans what is above
};

// A change asked by the operator; absent fields stay as they are.
struct SettingsChange {
  std::optional<uint8_t> weight;
  std::optional<uint64_t> min_bytes;
  std::optional<uint64_t> max_bytes;
};

struct PartitionView {
  std::string name;
  uint64_t ram_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t target_loaned_bytes = 0;
  PartitionSettings settings;
  proto::Stats stats;
  HcallCounts counts;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);

  // Takes ownership of `memfd` (closed on refusal). Refuses a name in use
  // and a memfd that does not match.
  tl::expected<std::shared_ptr<HvPartition>, proto::Error> Register(const proto::Register& r, int memfd);
  void Unregister(const std::shared_ptr<HvPartition>& p);
  proto::Registered Terms(const proto::Register& r) const;
  // H_GET_MPP for `p`; its loan_request is its target minus what it has loaned now.
  papr::MppData Mpp(const HvPartition& p) const;
  // Runs the policy over every partition's last stats.
  void Rebalance();
  // `cmm hv set`: ENOENT for an unknown name, EINVAL for values that do not
  // fit the partition's RAM or each other.
  tl::expected<PartitionSettings, proto::Error> Configure(const std::string& name, const SettingsChange& change);

  uint64_t pool_bytes() const { return pool_bytes_.load(); }
  HcallStats& hcall_stats() { return hcall_stats_; }
  std::vector<PartitionView> Snapshot() const;

 private:
  struct Entry {
    std::shared_ptr<HvPartition> partition;
    PartitionSettings settings;
    uint64_t target_loaned = 0;
    uint64_t oom_seen = 0;
  };
  PoolOptions options_;
  std::atomic<uint64_t> pool_bytes_;
  HcallStats hcall_stats_;
  mutable std::mutex mu_;  // guards entries_
  std::map<std::string, Entry> entries_;
};

}  // namespace cmm::hv
