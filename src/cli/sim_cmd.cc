// `cmm sim`: the pool policy against a simulated fleet on a simulated
// clock, and what it did.
#include <cmath>
#include <cstdio>
#include <functional>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "pool/policy.h"
#include "sim/fleet.h"

namespace cmm::cli {

namespace {

struct SimFlags {
  uint32_t members = 100;
  double hours = 1;
  std::string trace;
  std::string save_trace;
  std::string pool;
  uint64_t seed = 1;
  std::string policy = "cmm";
  bool compare = false;
  bool sweep = false;
  double headroom_percent = 100 * hv::PolicyConfig{}.headroom;
  double peak_window_s = hv::PolicyConfig{}.peak_window_s;
  double growth_lead_s = hv::PolicyConfig{}.growth_lead_s;
  bool json = false;
};

// The headrooms `--sweep` runs, as shares of RAM: from none above the
// short line (low_free) to well past the default.
constexpr double kSweepHeadroom[] = {0.05, 0.06, 0.075, 0.10, 0.15, 0.20, 0.30};

std::string Percent(double part, double whole) {
  return whole > 0 ? fmt::format("{:.0f}%", 100.0 * part / whole) : "-";
}

void PrintText(const sim::SimReport& r) {
  const double pool = static_cast<double>(r.pool_bytes);
  std::printf("%u members, %s of RAM on a %s pool, %.1f simulated hours at %u s periods\n", r.members,
              FormatBytes(r.ram_bytes).c_str(), FormatBytes(r.pool_bytes).c_str(), r.seconds / 3600.0, r.period_s);
  std::printf("policy                              %s: %s\n", std::string(sim::PolicyName(r.policy)).c_str(),
              std::string(sim::PolicySource(r.policy)).c_str());
  std::printf("time over the pool                  %.0f s\n", r.over_policy_s);
  std::printf("over the pool after OOM give-back   %.0f s%s\n", r.over_oom_s,
              r.oom_overs == 0 ? ""
                               : fmt::format(" ({} times; back within it in p50 {:.0f} s, p99 {:.0f} s)", r.oom_overs,
                                             r.back_p50_s, r.back_p99_s)
                                     .c_str());
  std::printf("over the pool after it shrank       %.0f s\n", r.over_shrink_s);
  std::printf("pool could not be met (floors)      %.0f s\n", r.over_infeasible_s);
  std::printf("host memory above the pool          %.0f s\n", r.use_over_s);
  std::printf("pool use, peak                      %s (%s of the pool)\n", FormatBytes(r.peak_use_bytes).c_str(),
              Percent(static_cast<double>(r.peak_use_bytes), pool).c_str());
  std::printf("pool use, mean                      %s (%s of the pool)\n",
              FormatBytes(static_cast<uint64_t>(r.mean_use_bytes)).c_str(), Percent(r.mean_use_bytes, pool).c_str());
  std::printf("OOM events                          %llu\n", static_cast<unsigned long long>(r.oom_events));
  if (r.oom_events > 0) {
    std::printf("  a member's first                  %llu (and %llu in members that had met one before)\n",
                static_cast<unsigned long long>(r.oom_members),
                static_cast<unsigned long long>(r.oom_events - r.oom_members));
    std::printf("  by workload                      ");
    for (size_t k = 0; k < r.oom_by_shape.size(); ++k) {
      if (r.oom_by_shape[k] == 0) continue;
      std::printf(" %s %llu", std::string(sim::ShapeName(static_cast<sim::ShapeKind>(k))).c_str(),
                  static_cast<unsigned long long>(r.oom_by_shape[k]));
    }
    std::printf("\n");
  }
  std::printf("waited for room to join             at most %u s%s\n", r.join_wait_max_s,
              r.still_waiting ? fmt::format(" ({} still waiting at the end)", r.still_waiting).c_str() : "");
  std::printf("bursts fed, time to fulfil          %llu, p50 %.0f s, p99 %.0f s\n",
              static_cast<unsigned long long>(r.bursts), r.burst_p50_s, r.burst_p99_s);
  std::printf("fairness, RAM loaned by weight     ");
  for (const auto& b : r.fairness) {
    if (b.members) std::printf(" %u-%u: %.0f%%", b.lo, b.hi, 100 * b.loaned_share);
  }
  std::printf("\n");
  std::printf("host memory saved, mean             %s (without balloons: %s, with: %s)\n",
              FormatBytes(static_cast<uint64_t>(std::max(0.0, r.mean_saved_bytes))).c_str(),
              FormatBytes(static_cast<uint64_t>(r.mean_unballooned_bytes)).c_str(),
              FormatBytes(static_cast<uint64_t>(r.mean_use_bytes)).c_str());
  std::printf("target changes per member-hour      %.1f (most for one member: %u)\n", r.churn_per_member_hour,
              r.churn_max);
  std::printf("ran in %.1f s (%.0fx real time); one rebalance %.0f us mean, %.0f us at most\n", r.wall_s,
              r.wall_s > 0 ? r.seconds / r.wall_s : 0.0, r.rebalance_mean_us, r.rebalance_max_us);
}

nlohmann::json OomByShape(const sim::SimReport& r) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t k = 0; k < r.oom_by_shape.size(); ++k) {
    if (r.oom_by_shape[k] != 0) j[std::string(sim::ShapeName(static_cast<sim::ShapeKind>(k)))] = r.oom_by_shape[k];
  }
  return j;
}

nlohmann::json ReportJson(const sim::SimReport& r) {
  nlohmann::json bands = nlohmann::json::array();
  for (const auto& b : r.fairness) {
    bands.push_back({{"weight_lo", b.lo}, {"weight_hi", b.hi}, {"members", b.members}, {"loaned_share", b.loaned_share}});
  }
  return {{"policy", sim::PolicyName(r.policy)},
          {"headroom", r.headroom},
          {"members", r.members},
          {"seconds", r.seconds},
          {"period_s", r.period_s},
          {"pool_bytes", r.pool_bytes},
          {"ram_bytes", r.ram_bytes},
          {"over_pool_s", r.over_policy_s},
          {"over_pool_after_oom_s", r.over_oom_s},
          {"over_pool_after_oom_times", r.oom_overs},
          {"back_within_pool_p50_s", r.back_p50_s},
          {"back_within_pool_p99_s", r.back_p99_s},
          {"over_pool_after_shrink_s", r.over_shrink_s},
          {"pool_cannot_be_met_s", r.over_infeasible_s},
          {"use_over_pool_s", r.use_over_s},
          {"peak_use_bytes", r.peak_use_bytes},
          {"mean_use_bytes", r.mean_use_bytes},
          {"oom_events", r.oom_events},
          {"oom_events_by_workload", OomByShape(r)},
          {"oom_members", r.oom_members},
          {"join_wait_max_s", r.join_wait_max_s},
          {"still_waiting", r.still_waiting},
          {"bursts", r.bursts},
          {"burst_fulfil_p50_s", r.burst_p50_s},
          {"burst_fulfil_p99_s", r.burst_p99_s},
          {"fairness", bands},
          {"mean_unballooned_bytes", r.mean_unballooned_bytes},
          {"mean_saved_bytes", r.mean_saved_bytes},
          {"target_changes_per_member_hour", r.churn_per_member_hour},
          {"target_changes_max", r.churn_max},
          {"wall_s", r.wall_s},
          {"rebalance_mean_us", r.rebalance_mean_us},
          {"rebalance_max_us", r.rebalance_max_us}};
}

// The table's rows: one run each on the same trace.
void PrintRows(const std::vector<sim::SimReport>& reports, const char* head,
               const std::function<std::string(const sim::SimReport&)>& label) {
  const sim::SimReport& first = reports.front();
  std::printf("%u members, %s of RAM on a %s pool, %.1f simulated hours, the same trace for each\n", first.members,
              FormatBytes(first.ram_bytes).c_str(), FormatBytes(first.pool_bytes).c_str(), first.seconds / 3600.0);
  std::printf("%-12s %10s %11s %11s %11s %12s %15s %10s\n", head, "OOM events", "over pool", "after OOM",
              "use > pool", "saved, mean", "bursts p50/p99", "changes/h");
  for (const sim::SimReport& r : reports) {
    std::printf("%-12s %10llu %9.0f s %9.0f s %9.0f s %12s %8.0f/%.0f s %10.1f\n", label(r).c_str(),
                static_cast<unsigned long long>(r.oom_events), r.over_total_s(), r.over_oom_s, r.use_over_s,
                FormatBytes(static_cast<uint64_t>(std::max(0.0, r.mean_saved_bytes))).c_str(), r.burst_p50_s,
                r.burst_p99_s, r.churn_per_member_hour);
  }
  std::printf("over pool: seconds the members' entitlements were above the pool (after OOM: of those, after a\n"
              "guest took memory back on its own); use > pool: seconds the host memory behind them was; changes/h:\n"
              "target changes per member-hour\n");
}

// One line per policy on the same trace, cmm first.
void PrintCompare(const std::vector<sim::SimReport>& reports) {
  PrintRows(reports, "policy", [](const sim::SimReport& r) { return std::string(sim::PolicyName(r.policy)); });
  for (const sim::SimReport& r : reports) {
    std::printf("  %-8s %s\n", std::string(sim::PolicyName(r.policy)).c_str(),
                std::string(sim::PolicySource(r.policy)).c_str());
  }
}

// A run is on the frontier when no other has both fewer OOM events and
// more memory saved (one better, the other no worse).
bool OnFrontier(const sim::SimReport& r, const std::vector<sim::SimReport>& all) {
  for (const sim::SimReport& o : all) {
    if (o.oom_events <= r.oom_events && o.mean_saved_bytes >= r.mean_saved_bytes &&
        (o.oom_events < r.oom_events || o.mean_saved_bytes > r.mean_saved_bytes)) {
      return false;
    }
  }
  return true;
}

std::string HeadroomLabel(double headroom) { return fmt::format("{:g}%", 100 * headroom); }

// cmm's policy at each headroom on the same trace: what idle memory kept in
// each member buys in OOM events, and what it costs in memory saved.
void PrintSweep(const std::vector<sim::SimReport>& reports, double chosen) {
  PrintRows(reports, "headroom", [&](const sim::SimReport& r) {
    return HeadroomLabel(r.headroom) + (OnFrontier(r, reports) ? " +" : "") +
           (std::abs(r.headroom - chosen) < 1e-9 ? " *" : "");
  });
  std::printf("headroom: the share of its RAM each member keeps idle before any of it is asked for (cmm hv\n"
              "--headroom); +: on the frontier (no other run has both fewer OOM events and more saved);\n"
              "*: the default, %s\n",
              HeadroomLabel(chosen).c_str());
}

int RunSimCommand(const SimFlags& f) {
  // Thousands of members join at once: their lines would drown the figures.
  spdlog::set_level(spdlog::level::warn);
  sim::Trace trace;
  if (!f.trace.empty()) {
    std::ifstream in(f.trace);
    if (!in) throw UserError(fmt::format("cannot read trace {}", f.trace));
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = sim::ParseTrace(text.str());
    if (!parsed) throw UserError(fmt::format("trace {}: {}", f.trace, parsed.error()), kExitUsage);
    trace = std::move(*parsed);
  } else {
    if (f.members == 0) throw UserError("--members must be at least 1", kExitUsage);
    trace = sim::GenerateFleet(f.members, f.seed);
  }
  if (!f.save_trace.empty()) {
    std::ofstream out(f.save_trace);
    out << sim::TraceJson(trace) << "\n";
    if (!out) throw UserError(fmt::format("cannot write {}", f.save_trace));
  }
  sim::SimOptions o;
  if (!(f.hours > 0 && f.hours <= 24 * 365)) throw UserError("--hours must be above 0 (and at most a year)", kExitUsage);
  o.seconds = static_cast<uint32_t>(f.hours * 3600);
  o.seed = f.seed;
  if (!f.pool.empty()) {
    const auto pool = ParseSize(f.pool);
    if (!pool || *pool == 0) throw UserError(fmt::format("--pool {}: not a size like 4G or 512M", f.pool), kExitUsage);
    o.pool_bytes = *pool;
  }
  // Live progress on a terminal, every simulated ten minutes.
  if (isatty(STDERR_FILENO) != 0) {
    const uint32_t total = o.seconds;
    o.progress = [total](uint32_t done) {
      if (done % 600 == 0 || done >= total) std::fprintf(stderr, "\rsimulated %u of %u min", done / 60, total / 60);
      if (done >= total) std::fprintf(stderr, "\n");
    };
  }
  const auto kind = sim::PolicyByName(f.policy);
  if (!kind) throw UserError(fmt::format("--policy {}: not one of cmm, proxmox, mom, qubes", f.policy), kExitUsage);
  o.headroom = f.headroom_percent / 100;
  o.peak_window_s = f.peak_window_s;
  o.growth_lead_s = f.growth_lead_s;
  if (f.sweep) {
    std::vector<sim::SimReport> reports;
    for (const double h : kSweepHeadroom) {
      if (isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "headroom %s:\n", HeadroomLabel(h).c_str());
      o.headroom = h;
      reports.push_back(sim::RunSim(trace, o));
    }
    if (f.json) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& r : reports) {
        nlohmann::json j = ReportJson(r);
        j["on_frontier"] = OnFrontier(r, reports);
        all.push_back(std::move(j));
      }
      std::printf("%s\n", all.dump(2).c_str());
    } else {
      PrintSweep(reports, hv::PolicyConfig{}.headroom);
    }
    return 0;
  }
  if (f.compare) {
    std::vector<sim::SimReport> reports;
    for (const sim::PolicyKind k : sim::AllPolicies()) {
      if (isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "%s:\n", std::string(sim::PolicyName(k)).c_str());
      o.policy = k;
      reports.push_back(sim::RunSim(trace, o));
    }
    if (f.json) {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& r : reports) all.push_back(ReportJson(r));
      std::printf("%s\n", all.dump(2).c_str());
    } else {
      PrintCompare(reports);
    }
    return 0;
  }
  o.policy = *kind;
  const sim::SimReport r = sim::RunSim(trace, o);
  if (f.json) {
    std::printf("%s\n", ReportJson(r).dump(2).c_str());
  } else {
    PrintText(r);
  }
  return 0;
}

}  // namespace

Runner AddSim(CLI::App& app) {
  auto f = std::make_shared<SimFlags>();
  auto* c = app.add_subcommand("sim", "Run the pool policy against a simulated fleet on a simulated clock");
  auto* members = c->add_option("--members", f->members, "Members to generate (web, steady, batch, idle, leaking)")
                      ->capture_default_str();
  c->add_option("--hours", f->hours, "Simulated time")->capture_default_str();
  c->add_option("--trace", f->trace, "Replay this trace (JSON, see the README) instead of generating a fleet")
      ->excludes(members);
  c->add_option("--save-trace", f->save_trace, "Write the fleet's trace here (to edit or replay)");
  c->add_option("--pool", f->pool, "Pool size, e.g. 600G (default: the trace's, else 60% of the members' RAM)");
  c->add_option("--seed", f->seed, "Seed for the generated fleet and its workloads")->capture_default_str();
  auto* policy = c->add_option("--policy", f->policy,
                               "Whose rules decide the targets: cmm, or a peer's published algorithm (proxmox, mom, "
                               "qubes), the pool being its host")
                    ->capture_default_str();
  auto* compare = c->add_flag("--compare", f->compare, "Run the same trace under cmm and each peer, and print one table")
                     ->excludes(policy);
  auto* headroom = c->add_option("--headroom", f->headroom_percent,
                                 "cmm's headroom: the percent of its RAM each member keeps idle")
                       ->capture_default_str()
                       ->check(CLI::Range(1.0, 50.0));
  c->add_option("--peak-window", f->peak_window_s,
                "cmm's memory of peaks: seconds over which a member's recent peak falls back to its use (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  c->add_option("--growth-lead", f->growth_lead_s,
                "cmm's lead on growing use: seconds of a member's growth it is given room for ahead (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  c->add_flag("--sweep", f->sweep,
              "Run the same trace under cmm at headrooms from 5% to 30% and print its frontier in one table")
      ->excludes(policy)
      ->excludes(compare)
      ->excludes(headroom);
  c->add_flag("--json", f->json, "Print JSON");
  c->footer(
      "Examples:\n  cmm sim\n  cmm sim --members 10000 --hours 1 --json\n  cmm sim --members 2000 --compare\n"
      "  cmm sim --policy proxmox\n  cmm sim --members 2000 --sweep\n  cmm sim --headroom 15\n"
      "  cmm sim --members 20 --save-trace fleet.json && cmm sim --trace fleet.json --pool 16G");
  return [f] { return RunSimCommand(*f); };
}

}  // namespace cmm::cli
