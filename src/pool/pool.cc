#include "pool/pool.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/size_text.h"
#include "pool/idle_now.h"

namespace cmm::hv {

namespace {
// The policy's table counts unsigned bytes (it works in a double model of
// shares); a negative quantity is none there.
uint64_t InTable(Bytes b) { return AsUnsigned(b); }
Bytes FromTable(uint64_t v) { return FromUnsigned<Bytes>(v); }
// Rounds a member that has not sent stats yet is held at its admitted loan.
constexpr int kRoundsHeldUnread = 30;
// A major fault brings in one page: a guest's page, 4 KiB on the guests
// that report them (virtio_balloon on x86).
constexpr Bytes kFaultPage = KiB(4);
}  // namespace

Bounds BoundsOf(Bytes ram, const MemberSettings& s) {
  const Bytes max = s.max_bytes <= Bytes(0) ? ram : std::min(s.max_bytes, ram);
  return {std::clamp(s.min_bytes, Bytes(0), max), max};
}

Result<void> CheckSettings(const std::string& name, Bytes ram, const MemberSettings& s) {
  const Bytes max = s.max_bytes == Bytes(0) ? ram : s.max_bytes;
  if (s.min_bytes < Bytes(0) || max < Bytes(0) || s.min_bytes > ram || max > ram) {
    return Fail(ErrorCode::kInvalid, fmt::format("min and max must be within {}'s RAM ({} bytes)", name, ram.value()));
  }
  if (s.min_bytes > max) {
    return Fail(ErrorCode::kInvalid,
                fmt::format("min ({} bytes) is above max ({} bytes)", s.min_bytes.value(), max.value()));
  }
  return {};
}

Pool::Pool(PoolOptions options) : options_(std::move(options)), pool_bytes_(options_.pool_bytes.value()) {}

Result<void> Pool::Add(std::shared_ptr<Member> member, MemberSettings settings) {
  const std::string name = member->name();
  const Bytes ram = member->ram_bytes();
  if (options_.kept_terms) {
    if (const auto kept = options_.kept_terms(name)) {
      if (CheckSettings(name, ram, *kept)) {
        spdlog::info("{} {}: the terms kept from before the restart apply", KindName(member->kind()), name);
        settings = *kept;
      } else {
        spdlog::warn("{} {}: the terms kept from before the restart do not fit its RAM; its own apply",
                     KindName(member->kind()), name);
      }
    }
  }
  settings.min_bytes = std::min(settings.min_bytes, ram);
  if (auto added = Admit(std::move(member), settings); !added) return added;
  if (options_.on_terms) options_.on_terms(name, settings);
  return {};
}

Result<void> Pool::Admit(std::shared_ptr<Member> member, const MemberSettings& settings) {
  const std::string name = member->name();
  const Bytes ram = member->ram_bytes();
  MutexLock lock(mu_);
  if (const Entry* e = Lookup(name); e != nullptr) {
    return Fail(ErrorCode::kExists, fmt::format("a {} named {} is already registered", KindName(e->member->kind()), name));
  }
  // Admission: its balloon holds what the pool has no room for before its
  // workload runs, so joining never takes the pool over, unless it joins
  // running (a VM attached, a domain adopted): then it keeps what it uses
  // (by its stats, else the host memory behind it now) and a buffer, and the
  // others make room.
  const MemberState st = member->Observe();
  const Bytes in_use = st.stats.taken != MemberClock::time_point{}
                           ? MemberUse(st.ram_bytes, st.loaned_bytes, st.stats)
                           : std::clamp(st.backing_bytes, Bytes(0), ram);
  const Bytes target = AdmissionTarget(ram, settings, in_use);
  const Bytes pool = pool_bytes();
  member->Assign({target, pool, settings.weight});
  spdlog::info("{} {} joined the pool: {} bytes of RAM, weight {}, starts with {} bytes loaned",
               KindName(member->kind()), name, ram.value(), settings.weight, target.value());
  const Bytes entitled = ram - target;
  if (entitled_ + entitled > pool) {
    spdlog::warn("{} {} joined at its floor ({}) with {} of room: the pool is over until others loan",
                 KindName(member->kind()), name, FormatBytes(entitled), FormatBytes(std::max(pool - entitled_, Bytes(0))));
  }
  entitled_ += entitled;
  index_.emplace(name, entries_.size());
  Entry e{std::move(member), settings, target, 0, entitled, {}, target};
  e.peak = PeakMemory(options_.policy.peak_window_s);
  // Its loan as it stands, not its target: a loan on its way up to it has
  // not fallen.
  e.loaned_observed = std::clamp(st.loaned_bytes, Bytes(0), ram);
  entries_.push_back(std::move(e));
  return {};
}

Bytes Pool::AdmissionTarget(Bytes ram, const MemberSettings& s, Bytes in_use) const {
  const Bounds b = BoundsOf(ram, s);
  Bytes keep = b.min;
  if (in_use > Bytes(0)) {
    const double use = static_cast<double>(in_use.value());
    const double buffer =
        std::max(options_.policy.buffer * use, options_.policy.headroom * static_cast<double>(ram.value()));
    keep = std::clamp(in_use + Bytes(static_cast<int64_t>(buffer)), b.min, b.max);
  }
  const Bytes room = std::max(pool_bytes() - entitled_, Bytes(0));
  const Bytes g(std::max<int64_t>(static_cast<int64_t>(options_.policy.granule), 1));
  // What does not fit, rounded up to whole granules.
  const Bytes over = std::max(ram - room, Bytes(0));
  const Bytes target = g * ((over + g - Bytes(1)) / g);
  return std::clamp(target, ram - b.max, ram - keep);
}

bool Pool::HasRoomFor(Bytes ram, const MemberSettings& s) const {
  MutexLock lock(mu_);
  return entitled_ + BoundsOf(ram, s).min <= pool_bytes();
}

void Pool::Reserve(Bytes bytes) {
  MutexLock lock(mu_);
  reserved_ = bytes;
}

double BandsToGo(const MemberView& m) {
  const double gap = static_cast<double>((m.target_loaned_bytes - m.loaned_bytes).value());
  return gap / SettleBand(PolicyConfig{}, static_cast<double>(m.ram_bytes.value()));
}

bool AtTarget(const MemberView& m) { return std::abs(BandsToGo(m)) <= 1; }

std::string ShortfallMessage(const Feasibility& f) {
  if (f.shortfall_bytes <= Bytes(0)) return "";
  return fmt::format("pool {} cannot be met: members' floors need {}; lower min_mem_mb or grow the pool",
                     FormatBytes(f.pool_bytes), FormatBytes(f.floors_bytes));
}

Feasibility Pool::feasibility() const {
  MutexLock lock(mu_);
  return feasibility_;
}

void Pool::NoteFeasibility(const Feasibility& now) {
  const bool was = feasibility_.shortfall_bytes > Bytes(0);
  const bool is = now.shortfall_bytes > Bytes(0);
  // Said once per change: when it stops being met, when what it lacks
  // changes, and when it can be met again.
  if (is && (!was || now.floors_bytes != feasibility_.floors_bytes || now.pool_bytes != feasibility_.pool_bytes)) {
    spdlog::warn("{}", ShortfallMessage(now));
  } else if (was && !is) {
    spdlog::info("pool {} can be met again: members' floors need {}", FormatBytes(now.pool_bytes),
                 FormatBytes(now.floors_bytes));
  }
  feasibility_ = now;
}

void Pool::NoteDemand(Bytes demand) {
  const bool over = demand > pool_bytes();
  if (over && !demand_over_) {
    // Names are gathered only when it is said, not every round.
    std::vector<NamedUse> uses;
    uses.reserve(entries_.size());
    for (const Entry& e : entries_) uses.push_back({e.member->name(), e.used});
    spdlog::warn("demand beyond the pool: {}", DemandMessage(pool_bytes(), std::move(uses)));
  } else if (!over && demand_over_) {
    spdlog::info("the members' use fits the pool of {} again", FormatBytes(pool_bytes()));
  }
  demand_over_ = over;
}

void Pool::Remove(const Member& member) {
  if (!Drop(member)) return;
  if (options_.on_left) options_.on_left(member.name());
}

bool Pool::Drop(const Member& member) {
  MutexLock lock(mu_);
  const auto it = index_.find(member.name());
  if (it == index_.end() || entries_[it->second].member.get() != &member) return false;
  const size_t at = it->second;
  entitled_ = std::max(entitled_ - entries_[at].entitled, Bytes(0));
  spdlog::info("{} {} left; its memory goes back to the host", KindName(member.kind()), member.name());
  index_.erase(it);
  // The last entry takes its place.
  if (at + 1 != entries_.size()) {
    entries_[at] = std::move(entries_.back());
    index_[entries_[at].member->name()] = at;
  }
  entries_.pop_back();
  return true;
}

std::shared_ptr<Member> Pool::Find(const std::string& name) const {
  MutexLock lock(mu_);
  const Entry* e = Lookup(name);
  return e == nullptr ? nullptr : e->member;
}

Pool::Entry* Pool::Lookup(const std::string& name) {
  // Not through the const overload: the lock analysis cannot see that
  // as_const(*this).mu_ is this mu_.
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const Pool::Entry* Pool::Lookup(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void Pool::Rebalance() {
  MutexLock lock(mu_);
  std::vector<PolicyInput>& in = inputs_;
  in.resize(entries_.size());
  Bytes backing, demand, taken_back;
  for (size_t k = 0; k < entries_.size(); ++k) {
    Entry& e = entries_[k];
    const MemberState s = e.member->Observe();
    backing += s.backing_bytes;
    const Bytes loaned = std::clamp(s.loaned_bytes, Bytes(0), s.ram_bytes);
    PolicyInput& i = in[k];
    i.ram_bytes = InTable(s.ram_bytes);
    i.min_bytes = InTable(e.settings.min_bytes);
    i.max_bytes = InTable(e.settings.max_bytes);
    i.weight = e.settings.weight;
    i.loaned_bytes = InTable(loaned);
    i.granted_bytes = InTable(loaned - std::min(loaned, e.target_loaned));
    i.asked_bytes = InTable(e.target_loaned - std::min(loaned, e.target_loaned));
    const bool new_reading = s.stats.taken != e.stats_seen;
    const double since_reading = e.stats_seen == MemberClock::time_point{}
                                     ? 0.0
                                     : std::chrono::duration<double>(s.stats.taken - e.stats_seen).count();
    if (new_reading) e.stats_seen = s.stats.taken;
    // Against its loan when the stats were taken, not when this round first
    // saw them: a partition inflates right after the call that carries its
    // stats, and counting that loan as still idle asked it twice.
    const Bytes loaned_at_stats = std::clamp(s.stats.loaned_bytes, Bytes(0), s.ram_bytes);
    const IdleNow idle = IdleSinceStats(s.stats, loaned - loaned_at_stats, s.ram_bytes);
    i.free_bytes = InTable(idle.free);
    i.cache_bytes = InTable(idle.cache);
    i.backing_bytes = InTable(std::clamp(s.backing_bytes, Bytes(0), s.ram_bytes));
    if (s.stats.oom_events + 1 < e.oom_seen) e.oom_seen = s.stats.oom_events;  // its count started over
    i.new_oom_events = s.stats.oom_events - std::min(s.stats.oom_events, e.oom_seen);
    i.frozen = !s.responsive;
    // Until its first stats reading (a few rounds at most), a member that
    // just joined counts at the loan it was admitted with, as Admit counted
    // it: with nothing known of it, it is neither short of memory (no free
    // memory read is not none) nor asked for more, and its balloon is on
    // its way there. Otherwise a round between its join and its first
    // call would hand its admitted loan back and ask it of the others.
    const bool unread = s.stats.taken == MemberClock::time_point{} && s.stats.free_bytes == Bytes(0) &&
                       s.stats.cache_bytes == Bytes(0);
    if (unread && e.rounds_unread++ < kRoundsHeldUnread && !i.frozen) {
      i.frozen = true;
      i.loaned_bytes = InTable(std::max(loaned, e.target_loaned));
      i.granted_bytes = 0;
      i.asked_bytes = 0;
    }
    e.oom_seen = std::max(e.oom_seen, s.stats.oom_events);
    e.used = MemberUse(s.ram_bytes, loaned, s.stats);
    demand += e.used;
    // A loan fallen below what it was at the last round and below its
    // target was taken back by the member itself (its OOM path): answered
    // this round as an OOM event, not when its stats next show the count
    // (a partition's come once a second, a VM's once a stats period).
    const Bytes fell = std::max(std::min(e.loaned_observed, e.target_loaned) - loaned, Bytes(0));
    e.loaned_observed = loaned;
    if (fell > Bytes(0) && i.new_oom_events == 0) {
      i.new_oom_events = 1;
      ++e.oom_seen;  // the count its stats will show is this one
    }
    taken_back += i.new_oom_events > 0 ? std::max(e.loaned_seen - loaned, Bytes(0)) : Bytes(0);
    e.loaned_seen = loaned;
    // Its peak, raised only by use it met under pressure (an OOM event, or
    // short of memory) since the last reading: a burst that outran the
    // pool, not use that grew slowly enough to be followed.
    const double low = options_.policy.low_free * static_cast<double>(s.ram_bytes.value());
    // Pressure the guest gives counts as demand: a swap-in makes it short
    // of memory this round, as an OOM event does; reclaim or major faults
    // with no free memory left mean its use met none, and that use is
    // remembered as a peak.
    i.swapping = false;  // the inputs are kept from round to round
    bool reclaiming = false;  // its use met no free memory since its last reading
    if (new_reading) {
      const Pressure p = ReadPressure(s.stats, e.pressure, Bytes(static_cast<int64_t>(options_.policy.granule)),
                                      kFaultPage);
      i.swapping = p.swapping;
      reclaiming = p.reclaiming && static_cast<double>(idle.free.value()) < low;
      e.pressed = e.pressed || p.swapping || reclaiming;
    }
    e.pressed = e.pressed || i.new_oom_events > 0 || static_cast<double>((idle.free + idle.cache).value()) < low;
    if (new_reading) {
      e.peak.Note(e.used, since_reading, e.pressed);
      e.pressed = false;
      // By what the member said it used, not by its free memory against
      // a loan that may have moved since the reading. A first reading says
      // nothing of growth (since_reading is 0). Only growth kept up over two
      // readings is followed: a single step is already taken, and
      // following it anyway cost a sim of 10 000 members 7838 OOM events
      // against 7352 (it asked others for a plateau that never came).
      // Use that rose while it reclaimed with no free memory left is a
      // burst eating its cache, not a step that fitted (the one the sim
      // measured): followed at its last rate, and at its first rise until
      // its next reading (the lead cut to the time between readings) so
      // that a burst that stops there takes less from others also
      // growing.
      const Bytes used = std::clamp(s.stats.used_bytes, Bytes(0), s.ram_bytes);
      const double rate = since_reading > 0
                              ? static_cast<double>(std::max(used - e.used_at_reading, Bytes(0)).value()) / since_reading
                              : 0.0;
      const double lead = options_.policy.growth_lead_s;
      const double first_rise = lead > 0 ? std::min(1.0, since_reading / lead) : 1.0;
      e.growth_per_s = !reclaiming         ? std::min(rate, e.last_rate)
                       : e.last_rate > 0 ? rate
                                         : rate * first_rise;
      e.last_rate = rate;
      e.used_at_reading = used;
    }
    if (options_.policy.peak_window_s > 0) i.peak_bytes = InTable(e.peak.peak());
    // A rise at its last reading worth a target change over the lead (a
    // slow leak is followed as growth instead).
    i.rising = e.last_rate * options_.policy.growth_lead_s >=
               SettleBand(options_.policy, static_cast<double>(i.ram_bytes));
    i.growth_bytes = static_cast<uint64_t>(
        std::min(e.growth_per_s * options_.policy.growth_lead_s, static_cast<double>(s.ram_bytes.value())));
  }
  if (options_.sizer) pool_bytes_.store(options_.sizer(backing).value());
  const Bytes pool = pool_bytes();
  PolicyConfig policy = options_.policy;
  policy.pool_bytes = InTable(pool - reserved_);
  giveback_reserve_.Add(taken_back);
  // At most a share of the pool: a storm of give-backs (members admitted
  // with full balloons, all short at once) must not hold the pool back.
  const auto cap = static_cast<int64_t>(options_.policy.giveback_reserve_max * static_cast<double>(pool.value()));
  policy.giveback_reserve_bytes = InTable(std::min(giveback_reserve_.value(), Bytes(cap)));
  const PolicyDecision d = options_.decide(policy, in);
  NoteFeasibility({pool, FromTable(d.floors_bytes) + reserved_, FromTable(d.shortfall_bytes),
                   FromTable(d.giveback_reserve_bytes)});
  NoteDemand(demand);
  size_t k = 0;
  entitled_ = Bytes(0);
  for (Entry& e : entries_) {
    const Bytes ram = FromTable(in[k].ram_bytes);
    const Bytes loaned = FromTable(in[k].loaned_bytes);
    const Bytes target = std::min(FromTable(d.targets[k]), ram);
    ++k;
    // Until it sees the new target a member may still act on the old one.
    const Bytes bound = std::min({loaned, e.target_loaned, target});
    e.entitled = ram - bound;
    entitled_ += e.entitled;
    e.target_loaned = target;
    e.member->Assign({target, pool, e.settings.weight});
  }
}

std::vector<MemberView> Pool::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<MemberView> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) {
    MemberState s = e.member->Observe();
    out.push_back({e.member->name(), e.member->kind(), s.ram_bytes, s.backing_bytes, s.loaned_bytes, e.target_loaned, e.settings,
                   s.stats, s.responsive, std::move(s.note), std::move(s.backing_source), s.own_bytes, s.pid, s.counts, std::move(s.uri)});
  }
  std::sort(out.begin(), out.end(), [](const MemberView& a, const MemberView& b) { return a.name < b.name; });
  return out;
}

void Pool::Note(const std::string& about, std::string text) {
  MutexLock lock(mu_);
  if (text.empty()) {
    notes_.erase(about);
  } else {
    notes_[about] = std::move(text);
  }
}

std::vector<std::string> Pool::notes() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  out.reserve(notes_.size());
  for (const auto& [_, text] : notes_) out.push_back(text);
  return out;
}

Result<MemberSettings> Pool::Configure(const std::string& name, const SettingsChange& change) {
  auto s = Reconfigure(name, change);
  if (s && options_.on_terms) options_.on_terms(name, *s);
  return s;
}

Result<MemberSettings> Pool::Reconfigure(const std::string& name, const SettingsChange& change) {
  MutexLock lock(mu_);
  Entry* entry = Lookup(name);
  if (entry == nullptr) return Fail(ErrorCode::kNotFound, fmt::format("no partition or VM named {}", name));
  MemberSettings s = entry->settings;
  const Bytes ram = entry->member->ram_bytes();
  if (change.weight) s.weight = *change.weight;
  if (change.min_bytes) s.min_bytes = *change.min_bytes;
  if (change.max_bytes) s.max_bytes = *change.max_bytes;
  if (auto ok = CheckSettings(name, ram, s); !ok) return tl::unexpected(ok.error());
  entry->settings = s;
  // The new weight reaches the member now, not at the next rebalance.
  entry->member->Assign({entry->target_loaned, pool_bytes(), s.weight});
  spdlog::info("{} {}: weight {}, min {} bytes, max {} bytes", KindName(entry->member->kind()), name, s.weight,
               s.min_bytes.value(), (s.max_bytes == Bytes(0) ? ram : s.max_bytes).value());
  return s;
}

}  // namespace cmm::hv
