#include "hv/pool.h"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace cmm::hv {

tl::expected<void, Refusal> CheckSettings(const std::string& name, uint64_t ram, const MemberSettings& s) {
  const uint64_t max = s.max_bytes == 0 ? ram : s.max_bytes;
  if (s.min_bytes > ram || max > ram) {
    return tl::unexpected(Refusal{EINVAL, fmt::format("min and max must be within {}'s RAM ({} bytes)", name, ram)});
  }
  if (s.min_bytes > max) {
    return tl::unexpected(Refusal{EINVAL, fmt::format("min ({} bytes) is above max ({} bytes)", s.min_bytes, max)});
  }
  return {};
}

Pool::Pool(PoolOptions options) : options_(std::move(options)), pool_bytes_(options_.pool_bytes) {}

tl::expected<void, Refusal> Pool::Add(std::shared_ptr<Member> member, MemberSettings settings) {
  const std::string name = member->name();
  const uint64_t ram = member->ram_bytes();
  settings.min_bytes = std::min(settings.min_bytes, ram);
  std::lock_guard lock(mu_);
  if (const auto it = entries_.find(name); it != entries_.end()) {
    return tl::unexpected(Refusal{EEXIST, fmt::format("a {} named {} is already registered",
                                                      KindName(it->second.member->kind()), name)});
  }
  member->Assign({0, pool_bytes_.load(), settings.weight});
  spdlog::info("{} {} joined the pool: {} bytes of RAM, weight {}", KindName(member->kind()), name, ram,
               settings.weight);
  entries_.emplace(name, Entry{std::move(member), settings, 0, 0});
  return {};
}

void Pool::Remove(const Member& member) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(member.name());
  if (it != entries_.end() && it->second.member.get() == &member) {
    spdlog::info("{} {} left; its memory goes back to the host", KindName(member.kind()), member.name());
    entries_.erase(it);
  }
}

std::shared_ptr<Member> Pool::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.member;
}

void Pool::Rebalance() {
  std::lock_guard lock(mu_);
  std::vector<MemberState> states;
  states.reserve(entries_.size());
  uint64_t backing = 0;
  for (const auto& [name, e] : entries_) {
    states.push_back(e.member->Observe());
    backing += states.back().backing_bytes;
  }
  if (options_.sizer) pool_bytes_.store(options_.sizer(backing));
  PolicyConfig policy = options_.policy;
  policy.pool_bytes = pool_bytes_.load();
  std::vector<PolicyInput> in;
  in.reserve(entries_.size());
  size_t k = 0;
  for (auto& [name, e] : entries_) {
    const MemberState& s = states[k++];
    PolicyInput i;
    i.ram_bytes = s.ram_bytes;
    i.min_bytes = e.settings.min_bytes;
    i.max_bytes = e.settings.max_bytes;
    i.weight = e.settings.weight;
    i.loaned_bytes = s.loaned_bytes;
    i.free_bytes = s.stats.free_bytes;
    i.cache_bytes = s.stats.cache_bytes;
    i.new_oom_events = s.stats.oom_events - std::min(s.stats.oom_events, e.oom_seen);
    i.frozen = !s.responsive;
    e.oom_seen = s.stats.oom_events;
    in.push_back(i);
  }
  const auto requests = LoanRequests(policy, in);
  k = 0;
  for (auto& [name, e] : entries_) {
    const int64_t target = static_cast<int64_t>(in[k].loaned_bytes) + requests[k];
    ++k;
    e.target_loaned = static_cast<uint64_t>(std::max<int64_t>(0, target));
    e.member->Assign({e.target_loaned, policy.pool_bytes, e.settings.weight});
  }
}

std::vector<MemberView> Pool::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<MemberView> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) {
    MemberState s = e.member->Observe();
    out.push_back({name, e.member->kind(), s.ram_bytes, s.backing_bytes, s.loaned_bytes, e.target_loaned, e.settings,
                   s.stats, s.responsive, std::move(s.note), std::move(s.backing_source), s.own_bytes, s.pid, s.counts});
  }
  return out;
}

tl::expected<MemberSettings, Refusal> Pool::Configure(const std::string& name, const SettingsChange& change) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return tl::unexpected(Refusal{ENOENT, fmt::format("no partition or VM named {}", name)});
  MemberSettings s = it->second.settings;
  const uint64_t ram = it->second.member->ram_bytes();
  if (change.weight) s.weight = *change.weight;
  if (change.min_bytes) s.min_bytes = *change.min_bytes;
  if (change.max_bytes) s.max_bytes = *change.max_bytes;
  if (auto ok = CheckSettings(name, ram, s); !ok) return tl::unexpected(ok.error());
  it->second.settings = s;
  // The new weight reaches the member now, not at the next rebalance.
  it->second.member->Assign({it->second.target_loaned, pool_bytes_.load(), s.weight});
  spdlog::info("{} {}: weight {}, min {} bytes, max {} bytes", KindName(it->second.member->kind()), name, s.weight,
               s.min_bytes, s.max_bytes == 0 ? ram : s.max_bytes);
  return s;
}

}  // namespace cmm::hv
