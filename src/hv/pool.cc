#include "hv/pool.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

Pool::Pool(PoolOptions options) : options_(std::move(options)) { options_.policy.pool_bytes = options_.pool_bytes; }

tl::expected<std::shared_ptr<HvPartition>, proto::Error> Pool::Register(const proto::Register& r, int memfd) {
  if (r.page_size % options_.cmo_page_size != 0) {
    close(memfd);
    return tl::unexpected(proto::Error{
        EINVAL, fmt::format("page size {} is not a multiple of the CMO page size {}", r.page_size, options_.cmo_page_size)});
  }
  {
    std::lock_guard lock(mu_);
    if (entries_.contains(r.name)) {
      close(memfd);
      return tl::unexpected(proto::Error{EEXIST, fmt::format("a partition named {} is already registered", r.name)});
    }
  }
  auto backing = MemfdBacking(memfd, r.ram_bytes);
  if (!backing) return tl::unexpected(proto::Error{EINVAL, backing.error()});
  auto p = std::make_shared<HvPartition>(r, options_.cmo_page_size, std::move(*backing));
  std::lock_guard lock(mu_);
  if (!entries_.emplace(r.name, Entry{p, 0, 0}).second) {
    return tl::unexpected(proto::Error{EEXIST, fmt::format("a partition named {} is already registered", r.name)});
  }
  spdlog::info("partition {} registered: {} bytes of RAM, weight {}", r.name, r.ram_bytes, r.weight);
  return p;
}

void Pool::Unregister(const std::shared_ptr<HvPartition>& p) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(p->config().name);
  if (it != entries_.end() && it->second.partition == p) {
    entries_.erase(it);
    spdlog::info("partition {} left; its memory goes back to the host", p->config().name);
  }
}

proto::Registered Pool::Terms(const proto::Register& r) const {
  const bool batch = options_.batch && r.want_batch;
  return proto::Registered{options_.cmo_page_size, batch ? proto::kCapBatch : 0u, batch ? proto::kMaxBatch : 0u};
}

papr::MppData Pool::Mpp(const HvPartition& p) const {
  papr::MppData d;
  d.entitled_mem = static_cast<int64_t>(p.config().ram_bytes);
  d.mapped_entitled_mem = -1;
  d.mem_weight = p.config().weight;
  d.pool_size = static_cast<int64_t>(options_.pool_bytes);
  d.backing_mem = static_cast<int64_t>(p.backing_bytes());
  uint64_t target = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(p.config().name); it != entries_.end()) target = it->second.target_loaned;
  }
  d.loan_request = static_cast<int64_t>(target) - static_cast<int64_t>(p.loaned_bytes());
  return d;
}

void Pool::Rebalance() {
  std::lock_guard lock(mu_);
  std::vector<PolicyInput> in;
  std::vector<Entry*> order;
  for (auto& [name, e] : entries_) {
    const proto::Stats s = e.partition->stats();
    const proto::Register& c = e.partition->config();
    PolicyInput i;
    i.ram_bytes = c.ram_bytes;
    i.min_bytes = c.min_bytes;
    i.max_bytes = c.max_bytes;
    i.weight = c.weight;
    i.loaned_bytes = e.partition->loaned_bytes();
    i.free_bytes = s.free_bytes;
    i.cache_bytes = s.cache_bytes;
    i.new_oom_events = s.oom_events - std::min(s.oom_events, e.oom_seen);
    e.oom_seen = s.oom_events;
    in.push_back(i);
    order.push_back(&e);
  }
  const auto requests = LoanRequests(options_.policy, in);
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t target = static_cast<int64_t>(in[i].loaned_bytes) + requests[i];
    order[i]->target_loaned = static_cast<uint64_t>(std::max<int64_t>(0, target));
  }
}

std::vector<PartitionView> Pool::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<PartitionView> out;
  for (const auto& [name, e] : entries_) {
    const HvPartition& p = *e.partition;
    out.push_back({name, p.config().ram_bytes, p.backing_bytes(), p.loaned_bytes(), e.target_loaned, p.config().weight,
                   p.stats(), p.counts()});
  }
  return out;
}

}  // namespace cmm::hv
