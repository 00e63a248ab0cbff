#include "demo/summary.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/size_text.h"
#include "pool/demand_report.h"

namespace cmm::demo {

uint64_t Sample::backing() const {
  uint64_t n = 0;
  for (const auto& p : partitions) n += p.backing_bytes;
  return n;
}
uint64_t Sample::ram() const {
  uint64_t n = 0;
  for (const auto& p : partitions) n += p.ram_bytes;
  return n;
}
uint64_t Sample::loaned() const {
  uint64_t n = 0;
  for (const auto& p : partitions) n += p.loaned_bytes;
  return n;
}

uint64_t Sample::saved() const {
  const uint64_t r = ram(), b = backing();
  return r > b ? r - b : 0;
}

void SummaryBuilder::Add(const Sample& s) {
  const double dt = sum_.samples == 0 ? 0 : s.t_s - last_t_;
  last_t_ = s.t_s;
  ++sum_.samples;
  sum_.seconds = s.t_s;
  sum_.pool_bytes = s.pool_bytes;
  sum_.ram_bytes = std::max(sum_.ram_bytes, s.ram());
  const uint64_t backing = s.backing();
  sum_.peak_backing = std::max(sum_.peak_backing, backing);
  backing_total_ += static_cast<double>(backing);
  uint64_t ooms_now = 0;
  for (const auto& p : s.partitions) ooms_now += p.oom_events;
  if (ooms_now > sum_.oom_events) last_oom_t_ = s.t_s;
  // The policy recovers an OOM give-back within 2 of the hypervisor's
  // periods (500 ms in the demo); a second each side covers the sampling.
  constexpr double kOomRecovery = 2.0;
  if (backing > s.pool_bytes) {
    (s.t_s - last_oom_t_ <= kOomRecovery ? sum_.seconds_over_after_oom : sum_.seconds_over_pool) += dt;
  }
  uint64_t demand = 0;
  for (const auto& p : s.partitions) demand += p.used_bytes;
  if (demand > s.pool_bytes) sum_.seconds_demand_over_pool += dt;
  if (demand > sum_.peak_demand) {
    sum_.peak_demand = demand;
    std::vector<hv::NamedUse> uses;
    for (const auto& p : s.partitions) uses.push_back({p.name, FromUnsigned<Bytes>(p.used_bytes)});
    sum_.peak_demand_said = hv::DemandMessage(FromUnsigned<Bytes>(s.pool_bytes), std::move(uses));
  }
  sum_.peak_loaned = std::max(sum_.peak_loaned, s.loaned());
  sum_.final_loaned = s.loaned();
  uint64_t ooms = 0, loaned = 0, returned = 0, rss = 0;
  for (const auto& p : s.partitions) {
    ooms += p.oom_events;
    if (p.oom_events > 0) {
      uint64_t& mine = sum_.oom_events_by_member[p.name];
      mine = std::max(mine, p.oom_events);
    }
    loaned += p.pages_loaned;
    returned += p.pages_returned;
    rss += p.rss_shmem_bytes;
  }
  // Counters only grow; a partition that left keeps what it had counted.
  sum_.oom_events = std::max(sum_.oom_events, ooms);
  sum_.pages_loaned = std::max(sum_.pages_loaned, loaned);
  sum_.pages_returned = std::max(sum_.pages_returned, returned);
  sum_.peak_rss_shmem = std::max(sum_.peak_rss_shmem, rss);
}

Summary SummaryBuilder::Finish(uint64_t integrity_errors) const {
  Summary s = sum_;
  s.integrity_errors = integrity_errors;
  s.mean_backing = s.samples ? static_cast<uint64_t>(backing_total_ / s.samples) : 0;
  s.overcommit = s.pool_bytes ? static_cast<double>(s.ram_bytes) / static_cast<double>(s.pool_bytes) : 0;
  return s;
}

namespace {

std::string Pct(uint64_t part, uint64_t whole) {
  return whole ? fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole)) : "-";
}

}  // namespace

std::string FormatSummary(const Summary& s, const Summary* off) {
  std::string out;
  auto row = [&](std::string_view what, const std::string& on, const std::string& without) {
    out += off ? fmt::format("  {:<38} {:>28} {:>28}\n", what, on, without) : fmt::format("  {:<38} {}\n", what, on);
  };
  auto both = [&](std::string_view what, auto f) { row(what, f(s), off ? f(*off) : std::string()); };
  out += fmt::format("summary after {:.0f} s\n", s.seconds);
  if (off) out += fmt::format("  {:<38} {:>28} {:>28}\n", "", "balloon on", "balloon off");
  both("partitions' RAM / pool", [](const Summary& x) {
    return fmt::format("{} / {} = {:.2f}x", FormatBytes(x.ram_bytes), FormatBytes(x.pool_bytes), x.overcommit);
  });
  both("pool use, peak", [](const Summary& x) {
    return fmt::format("{} ({} of the pool)", FormatBytes(x.peak_backing), Pct(x.peak_backing, x.pool_bytes));
  });
  both("pool use, mean", [](const Summary& x) {
    return fmt::format("{} ({})", FormatBytes(x.mean_backing), Pct(x.mean_backing, x.pool_bytes));
  });
  both("time over the pool", [](const Summary& x) {
    return fmt::format("{:.0f} s of {:.0f} s", x.seconds_over_pool, x.seconds);
  });
  both("over the pool after OOM give-back", [](const Summary& x) {
    return fmt::format("{:.0f} s", x.seconds_over_after_oom);
  });
  both("members' use above the pool", [](const Summary& x) {
    return fmt::format("{:.0f} s (peak {}, {} of the pool)", x.seconds_demand_over_pool, FormatBytes(x.peak_demand),
                       Pct(x.peak_demand, x.pool_bytes));
  });
  both("host memory saved, mean (RAM - use)", [](const Summary& x) {
    return FormatBytes(x.ram_bytes > x.mean_backing ? x.ram_bytes - x.mean_backing : 0);
  });
  both("loaned to the pool, peak", [](const Summary& x) { return FormatBytes(x.peak_loaned); });
  both("partitions' shmem RSS, peak (/proc)", [](const Summary& x) { return FormatBytes(x.peak_rss_shmem); });
  both("CMO pages loaned / returned", [](const Summary& x) {
    return fmt::format("{} / {}", x.pages_loaned, x.pages_returned);
  });
  // Who met them, the most first: where the bursts outran the pool.
  both("OOM events", [](const Summary& x) {
    std::vector<std::pair<std::string, uint64_t>> who(x.oom_events_by_member.begin(), x.oom_events_by_member.end());
    std::stable_sort(who.begin(), who.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string names;
    for (const auto& [name, n] : who) names += fmt::format("{}{} {}", names.empty() ? "" : ", ", name, n);
    return names.empty() ? fmt::format("{}", x.oom_events) : fmt::format("{} ({})", x.oom_events, names);
  });
  both("integrity errors", [](const Summary& x) { return fmt::format("{}", x.integrity_errors); });
  // Said in words when what the members used did not fit the pool.
  if (!s.peak_demand_said.empty()) out += fmt::format("demand beyond the pool at its peak: {}\n", s.peak_demand_said);
  if (off) {
    const int64_t saved = static_cast<int64_t>(off->peak_backing) - static_cast<int64_t>(s.peak_backing);
    out += fmt::format("  {:<38} {}\n", "host memory saved at peak",
                       saved > 0 ? FormatBytes(static_cast<uint64_t>(saved)) : std::string("none"));
    // The story in one line.
    const uint64_t mean_saved = off->mean_backing > s.mean_backing ? off->mean_backing - s.mean_backing : 0;
    out += fmt::format(
        "the balloon saved {} of host memory on average: without it the partitions came to back {} ({} of their "
        "RAM, {} of the pool); with it, {} at most ({} of the pool)\n",
        FormatBytes(mean_saved), FormatBytes(off->peak_backing), Pct(off->peak_backing, off->ram_bytes),
        Pct(off->peak_backing, off->pool_bytes), FormatBytes(s.peak_backing), Pct(s.peak_backing, s.pool_bytes));
  }
  return out;
}

std::string FormatFrame(const Sample& s, double duration_s) {
  std::string out = fmt::format(
      "cmm demo  {:.0f}/{:.0f} s   pool {}: in use {} ({})   RAM {} ({:.2f}x)   loaned {}   host memory saved {}\n\n",
      s.t_s, duration_s, FormatBytes(s.pool_bytes), FormatBytes(s.backing()), Pct(s.backing(), s.pool_bytes),
      FormatBytes(s.ram()), s.pool_bytes ? static_cast<double>(s.ram()) / static_cast<double>(s.pool_bytes) : 0.0,
      FormatBytes(s.loaned()), FormatBytes(s.saved()));
  out += fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5}\n", "PARTITION", "RAM", "USED", "CACHE",
                     "LOANED", "TARGET", "BACKING", "OOMS");
  for (const auto& p : s.partitions) {
    out += fmt::format("{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>5}\n", p.name, FormatBytes(p.ram_bytes),
                       FormatBytes(p.used_bytes), FormatBytes(p.cache_bytes), FormatBytes(p.loaned_bytes),
                       FormatBytes(p.target_loaned_bytes), FormatBytes(p.backing_bytes), p.oom_events);
  }
  // A bar of the pool's use: '#' in use, '.' free, '!' over.
  constexpr int kWidth = 60;
  const double used = s.pool_bytes ? static_cast<double>(s.backing()) / static_cast<double>(s.pool_bytes) : 0;
  std::string bar;
  for (int i = 0; i < kWidth; ++i) bar += (i + 0.5) / kWidth < std::min(used, 1.0) ? '#' : '.';
  if (used > 1.0) bar += '!';
  out += fmt::format("\npool [{}] {}\n", bar, Pct(s.backing(), s.pool_bytes));
  return out;
}

std::string FormatLine(const Sample& s) {
  std::string out = fmt::format("[{:5.1f}s] pool {} in use {} ({}), loaned {}, saved {}:", s.t_s,
                                FormatBytes(s.pool_bytes), FormatBytes(s.backing()), Pct(s.backing(), s.pool_bytes),
                                FormatBytes(s.loaned()), FormatBytes(s.saved()));
  for (const auto& p : s.partitions) {
    out += fmt::format(" {} used {} loaned {};", p.name, FormatBytes(p.used_bytes), FormatBytes(p.loaned_bytes));
  }
  out.pop_back();
  return out;
}

}  // namespace cmm::demo
