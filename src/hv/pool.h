// The shared pool: the registered partitions, what each is asked to loan,
// and the H_GET_MPP answer for each.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "hv/hv_partition.h"
#include "hv/policy.h"
#include "proto/messages.h"

namespace cmm::hv {

struct PoolOptions {
  uint64_t pool_bytes = 0;
  uint64_t cmo_page_size = 4096;
  bool batch = true;  // offer the batched page-state call
  PolicyConfig policy;  // pool_bytes is taken from above
};

struct PartitionView {
  std::string name;
  uint64_t ram_bytes = 0;
  uint64_t backing_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t target_loaned_bytes = 0;
  uint8_t weight = 0;
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

  uint64_t pool_bytes() const { return options_.pool_bytes; }
  std::vector<PartitionView> Snapshot() const;

 private:
  struct Entry {
    std::shared_ptr<HvPartition> partition;
    uint64_t target_loaned = 0;
    uint64_t oom_seen = 0;
  };
  PoolOptions options_;
  mutable std::mutex mu_;  // guards entries_
  std::map<std::string, Entry> entries_;
};

}  // namespace cmm::hv
