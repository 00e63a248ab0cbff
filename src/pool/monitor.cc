#include "pool/monitor.h"

#include <fmt/format.h>

#include "core/size_text.h"

namespace cmm::hv {

PoolMonitor::PoolMonitor(std::chrono::milliseconds keep, size_t max_events)
    : keep_ms_(keep.count()), max_events_(max_events) {}

void PoolMonitor::Note(int64_t unix_ms, std::string kind, std::string member, std::string text) {
  events_.push_back({next_seq_++, unix_ms, std::move(kind), std::move(member), std::move(text)});
  while (events_.size() > max_events_) events_.pop_front();
}

void PoolMonitor::Observe(int64_t unix_ms, Bytes pool_bytes, const Feasibility& feasibility,
                          const std::vector<MemberView>& members) {
  Bytes backing, loaned, ram;
  for (const auto& m : members) {
    backing += m.backing_bytes;
    loaned += m.loaned_bytes;
    ram += m.ram_bytes;
  }
  const PoolSample s{unix_ms, AsUnsigned(pool_bytes), AsUnsigned(backing), AsUnsigned(loaned), AsUnsigned(ram),
                     static_cast<uint32_t>(members.size())};
  MutexLock lock(mu_);
  if (!samples_.empty() && samples_.back().unix_ms / 1000 == unix_ms / 1000) {
    samples_.back() = s;
  } else {
    samples_.push_back(s);
  }
  while (!samples_.empty() && samples_.front().unix_ms < unix_ms - keep_ms_) samples_.pop_front();

  std::map<std::string, Seen> now;
  for (const auto& m : members) {
    Seen n{m.stats.oom_events, m.responsive, AtTarget(m)};
    auto was = seen_.find(m.name);
    if (was == seen_.end()) {
      Note(unix_ms, "joined", m.name,
           fmt::format("{} {} joined with {} of RAM", KindName(m.kind), m.name, FormatBytes(m.ram_bytes)));
    } else {
      const Seen& w = was->second;
      if (n.oom_events > w.oom_events) {
        const uint64_t more = n.oom_events - w.oom_events;
        Note(unix_ms, "oom", m.name,
             fmt::format("{}: {} OOM event{} ({} in all)", m.name, more, more == 1 ? "" : "s", n.oom_events));
      }
      if (!n.responsive && w.responsive) {
        Note(unix_ms, "unresponsive", m.name,
             fmt::format("{} is unresponsive{}{}", m.name, m.note.empty() ? "" : ": ", m.note));
      }
      if (n.responsive && !w.responsive) Note(unix_ms, "responsive", m.name, m.name + " answers again");
      if (n.reached && !w.reached) {
        Note(unix_ms, "reached", m.name,
             fmt::format("{} reached its target: {} loaned, {} backed", m.name, FormatBytes(m.loaned_bytes),
                         FormatBytes(m.backing_bytes)));
      }
    }
    now.emplace(m.name, n);
  }
  for (const auto& [name, w] : seen_) {
    if (!now.contains(name)) Note(unix_ms, "left", name, name + " left; its memory went back to the host");
  }
  seen_ = std::move(now);

  const bool over = backing > pool_bytes;
  if (over && !over_) {
    Note(unix_ms, "over", "",
         fmt::format("the members back {}, {} over the pool of {}", FormatBytes(backing),
                     FormatBytes(backing - pool_bytes), FormatBytes(pool_bytes)));
  }
  if (!over && over_ && observed_) {
    Note(unix_ms, "within", "",
         fmt::format("back within the pool: {} of {}", FormatBytes(backing), FormatBytes(pool_bytes)));
  }
  over_ = over;
  const bool infeasible = feasibility.shortfall_bytes > Bytes(0);
  if (infeasible && !infeasible_) Note(unix_ms, "infeasible", "", ShortfallMessage(feasibility));
  if (!infeasible && infeasible_) Note(unix_ms, "feasible", "", "the pool can be met again");
  infeasible_ = infeasible;
  observed_ = true;
}

std::vector<PoolSample> PoolMonitor::SamplesSince(int64_t unix_ms) const {
  MutexLock lock(mu_);
  std::vector<PoolSample> out;
  for (const auto& s : samples_) {
    if (s.unix_ms >= unix_ms) out.push_back(s);
  }
  return out;
}

std::vector<PoolEvent> PoolMonitor::EventsAfter(uint64_t seq) const {
  MutexLock lock(mu_);
  std::vector<PoolEvent> out;
  for (const auto& e : events_) {
    if (e.seq > seq) out.push_back(e);
  }
  return out;
}

}  // namespace cmm::hv
