#include "hv/pool.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

Pool::Pool(PoolOptions options) : options_(std::move(options)), pool_bytes_(options_.pool_bytes) {}

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
  auto p = std::make_shared<HvPartition>(r, options_.cmo_page_size, std::move(*backing), options_.faults);
  std::lock_guard lock(mu_);
  const PartitionSettings settings{r.weight, std::min(r.min_bytes, r.ram_bytes), r.max_bytes};
  if (!entries_.emplace(r.name, Entry{p, settings, 0, 0}).second) {
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
  d.pool_size = static_cast<int64_t>(pool_bytes_.load());
  d.backing_mem = static_cast<int64_t>(p.backing_bytes());
  uint64_t target = 0;
  d.mem_weight = p.config().weight;
  {
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(p.config().name); it != entries_.end()) {
      target = it->second.target_loaned;
      d.mem_weight = it->second.settings.weight;
    }
  }
  d.loan_request = static_cast<int64_t>(target) - static_cast<int64_t>(p.loaned_bytes());
  return d;
}

void Pool::Rebalance() {
  std::lock_guard lock(mu_);
  if (options_.sizer) {
    uint64_t backing = 0;
    for (const auto& [name, e] : entries_) backing += e.partition->backing_bytes();
    pool_bytes_.store(options_.sizer(backing));
  }
  PolicyConfig policy = options_.policy;
  policy.pool_bytes = pool_bytes_.load();
  std::vector<PolicyInput> in;
  std::vector<Entry*> order;
  for (auto& [name, e] : entries_) {
    const proto::Stats s = e.partition->stats();
    const proto::Register& c = e.partition->config();
    PolicyInput i;
    i.ram_bytes = c.ram_bytes;
    i.min_bytes = e.settings.min_bytes;
    i.max_bytes = e.settings.max_bytes;
    i.weight = e.settings.weight;
    i.loaned_bytes = e.partition->loaned_bytes();
    i.free_bytes = s.free_bytes;
    i.cache_bytes = s.cache_bytes;
    i.new_oom_events = s.oom_events - std::min(s.oom_events, e.oom_seen);
    e.oom_seen = s.oom_events;
    in.push_back(i);
    order.push_back(&e);
  }
  const auto requests = LoanRequests(policy, in);
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
    out.push_back({name, p.config().ram_bytes, p.backing_bytes(), p.loaned_bytes(), e.target_loaned, e.settings,
                   p.stats(), p.counts()});
  }
  return out;
}

tl::expected<PartitionSettings, proto::Error> Pool::Configure(const std::string& name, const SettingsChange& change) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return tl::unexpected(proto::Error{ENOENT, fmt::format("no partition named {}", name)});
  PartitionSettings s = it->second.settings;
  const uint64_t ram = it->second.partition->config().ram_bytes;
  if (change.weight) s.weight = *change.weight;
  if (change.min_bytes) s.min_bytes = *change.min_bytes;
  if (change.max_bytes) s.max_bytes = *change.max_bytes;
  const uint64_t max = s.max_bytes == 0 ? ram : s.max_bytes;
  if (s.min_bytes > ram || max > ram) {
    return tl::unexpected(proto::Error{
        EINVAL, fmt::format("min and max must be within the partition's RAM ({} bytes)", ram)});
  }
  if (s.min_bytes > max) {
    return tl::unexpected(proto::Error{EINVAL, fmt::format("min ({} bytes) is above max ({} bytes)", s.min_bytes, max)});
  }
  it->second.settings = s;
  spdlog::info("partition {}: weight {}, min {} bytes, max {} bytes", name, s.weight, s.min_bytes, max);
  return s;
}

}  // namespace cmm::hv
