// `cmm demo`: one hypervisor and four partitions as real processes sharing
// a pool a third of their size, with a live view and a summary at the end.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/size_text.h"
#include "ctl/client.h"
#include "demo/child.h"
#include "demo/scenario.h"
#include "demo/summary.h"

namespace cmm::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct DemoFlags {
  std::string pool = "1G";
  int partitions = 4;
  double overcommit = 3.0;
  double duration = 60;
  bool compare = false;
};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

std::string SelfExe() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw UserError("cannot find the cmm binary (/proc/self/exe)");
  return p.string();
}

// Sleeps up to `d`, waking early when asked to stop.
void Nap(std::chrono::milliseconds d) {
  const auto until = Clock::now() + d;
  while (!g_stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

class Run {
 public:
  Run(const demo::Scenario& s, bool balloon, double duration) : s_(s), balloon_(balloon), duration_(duration) {
    char tmpl[] = "/tmp/cmm-demo-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw UserError("cannot make a temporary directory under /tmp");
    dir_ = tmpl;
  }
  ~Run() {
    StopAll();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Returns the summary; `ok` is false if a process failed or integrity broke.
  demo::Summary Go(bool& ok) {
    const std::string exe = SelfExe();
    if (auto hv = demo::Child::Spawn({exe, "hv", "--pool", std::to_string(s_.pool_bytes), "--socket",
                                      dir_ + "/hv.hcall", "--control", dir_ + "/hv.ctl", "--period-ms", "500"},
                                     dir_ + "/hv.log")) {
      hv_ = std::make_unique<demo::Child>(std::move(*hv));
    }
    if (!hv_ || !WaitFor(dir_ + "/hv.ctl")) throw UserError(fmt::format("the hypervisor did not start:\n{}", Log("hv")));
    for (const auto& p : s_.partitions) {
      if (!p.phases_json.empty()) std::ofstream(dir_ + "/" + p.name + ".json") << p.phases_json;
      std::vector<std::string> argv = {exe, "guest", "--name", p.name, "--mem", std::to_string(p.ram_bytes),
                                       "--hv", dir_ + "/hv.hcall", "--socket", dir_ + "/" + p.name + ".sock",
                                       "--param", fmt::format("min_mem_mb={}", std::max<uint64_t>(16, p.ram_bytes >> 24))};
      if (!balloon_) argv.insert(argv.end(), {"--param", "disable=1"});
      for (const auto& w : p.workloads) {
        argv.insert(argv.end(), {"--workload", w.rfind("phases:", 0) == 0 ? "phases:" + dir_ + "/" + w.substr(7) : w});
      }
      auto c = demo::Child::Spawn(argv, dir_ + "/" + p.name + ".log");
      if (!c) throw UserError("cannot start a partition");
      guests_.push_back(std::make_unique<demo::Child>(std::move(*c)));
    }
    for (const auto& p : s_.partitions) {
      if (!WaitFor(dir_ + "/" + p.name + ".sock")) {
        throw UserError(fmt::format("partition {} did not start:\n{}", p.name, Log(p.name)));
      }
    }

    const bool tty = isatty(STDOUT_FILENO) == 1;
    demo::SummaryBuilder summary;
    const auto start = Clock::now();
    ok = true;
    for (;;) {
      Nap(std::chrono::milliseconds(1000));
      const double t = std::chrono::duration<double>(Clock::now() - start).count();
      if (const auto sample = Take(t)) {
        summary.Add(*sample);
        if (tty) {
          fmt::print("\x1b[H\x1b[2J{}{}\n", balloon_ ? "" : "(balloon off) ", demo::FormatFrame(*sample, duration_));
        } else {
          fmt::print("{}{}\n", balloon_ ? "" : "(balloon off) ", demo::FormatLine(*sample));
        }
        std::fflush(stdout);
      }
      if (const std::string dead = Dead(); !dead.empty()) {
        fmt::print(stderr, "cmm demo: {} exited early:\n{}\n", dead, Log(dead));
        ok = false;
        break;
      }
      if (g_stop || t >= duration_) break;
    }
    // Integrity as each partition counted it, then an orderly stop: each
    // partition returns its pages (S10), then the hypervisor goes.
    uint64_t errors = 0;
    for (const auto& p : s_.partitions) {
      const auto r = ctl::Call(dir_ + "/" + p.name + ".sock", {{"op", "status"}});
      if (r && r->value("ok", false)) errors += (*r)["integrity_errors"].get<uint64_t>();
    }
    if (!StopAll()) ok = false;
    if (errors != 0) ok = false;
    return summary.Finish(errors);
  }

 private:
  static bool WaitFor(const std::string& path) {
    for (int i = 0; i < 500 && !g_stop; ++i) {
      if (std::filesystem::exists(path)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::filesystem::exists(path);
  }
  std::string Log(const std::string& who) const {
    std::ifstream f(dir_ + "/" + who + ".log");
    std::string line, tail;
    std::vector<std::string> lines;
    while (std::getline(f, line)) lines.push_back(line);
    for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) tail += "  " + lines[i] + "\n";
    return tail;
  }
  std::string Dead() {
    if (hv_ && !hv_->Running()) return "hv";
    for (size_t i = 0; i < guests_.size(); ++i) {
      if (!guests_[i]->Running()) return s_.partitions[i].name;
    }
    return "";
  }
  std::optional<demo::Sample> Take(double t) {
    const auto r = ctl::Call(dir_ + "/hv.ctl", {{"op", "status"}});
    if (!r || !r->value("ok", false)) return std::nullopt;
    demo::Sample s;
    s.t_s = t;
    s.pool_bytes = (*r)["pool_bytes"];
    for (size_t i = 0; i < s_.partitions.size(); ++i) {
      demo::PartitionSample p;
      p.name = s_.partitions[i].name;
      p.ram_bytes = s_.partitions[i].ram_bytes;
      // Memory use as the partition counts it now (with the balloon off it
      // does not poll, so the hypervisor has no stats from it)...
      const auto g = ctl::Call(dir_ + "/" + p.name + ".sock", {{"op", "status"}});
      if (g && g->value("ok", false)) {
        const uint64_t ps = (*g)["page_size"];
        p.cache_bytes = (*g)["cache_pages"].get<uint64_t>() * ps;
        const uint64_t in_use = ((*g)["movable_pages"].get<uint64_t>() + (*g)["unmovable_pages"].get<uint64_t>()) * ps;
        p.used_bytes = in_use - std::min(in_use, p.cache_bytes);
        p.free_bytes = (*g)["free_pages"].get<uint64_t>() * ps;
        p.oom_events = (*g)["oom_events"];
      }
      // ...and its loans and backing as the hypervisor sees them.
      for (const auto& v : (*r)["partitions"]) {
        if (v["name"] != p.name) continue;
        p.loaned_bytes = v["loaned_bytes"];
        p.target_loaned_bytes = v["target_loaned_bytes"];
        p.backing_bytes = v["backing_bytes"];
        p.pages_loaned = v["hcalls"]["pages_loaned"];
        p.pages_returned = v["hcalls"]["pages_returned"];
      }
      p.rss_shmem_bytes = guests_[i]->RssShmem();
      s.partitions.push_back(p);
    }
    return s;
  }
  // True when every process ended with exit code 0.
  bool StopAll() {
    bool clean = true;
    for (auto& g : guests_) clean &= g->Stop(std::chrono::seconds(30)) == 0;
    guests_.clear();
    if (hv_) clean &= hv_->Stop(std::chrono::seconds(10)) == 0;
    hv_.reset();
    return clean;
  }

  const demo::Scenario& s_;
  const bool balloon_;
  const double duration_;
  std::string dir_;
  std::unique_ptr<demo::Child> hv_;
  std::vector<std::unique_ptr<demo::Child>> guests_;
};

int RunDemo(const DemoFlags& f) {
  demo::ScenarioOptions o;
  const auto pool = ParseSize(f.pool);
  if (!pool || *pool == 0) throw UserError(fmt::format("--pool {}: not a size; try 1G", f.pool), kExitUsage);
  o.pool_bytes = *pool;
  o.partitions = f.partitions;
  o.overcommit = f.overcommit;
  o.duration_s = f.duration;
  if (const std::string why = demo::CheckScenario(o); !why.empty()) throw UserError(why, kExitUsage);
  const demo::Scenario s = demo::BuildScenario(o);

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  fmt::print("cmm demo: a pool of {} shared by {} partitions of {} ({:.1f}x overcommit), {:.0f} s\n",
             FormatBytes(s.pool_bytes), s.partitions.size(), FormatBytes(s.partitions[0].ram_bytes), o.overcommit,
             o.duration_s);
  for (const auto& p : s.partitions) fmt::print("  {:<8} {}: {}\n", p.name, p.role, fmt::join(p.workloads, ", "));
  std::fflush(stdout);
  bool ok = false;
  demo::Summary on;
  {
    Run run(s, true, o.duration_s);
    on = run.Go(ok);
  }
  std::optional<demo::Summary> off;
  if (f.compare && !g_stop) {
    fmt::print("\nthe same run with the balloon disabled, for comparison\n");
    std::fflush(stdout);
    bool ok_off = false;
    Run run(s, false, o.duration_s);
    off = run.Go(ok_off);
  }
  fmt::print("\n{}", demo::FormatSummary(on, off ? &*off : nullptr));
  fmt::print("{}\n", ok ? "integrity held; every partition returned its pages and exited"
                        : "FAILED: a process failed or integrity broke (see above)");
  return ok ? 0 : 1;
}

}  // namespace

Runner AddDemo(CLI::App& app) {
  auto f = std::make_shared<DemoFlags>();
  auto* c = app.add_subcommand("demo", "Overcommit for real: a hypervisor and partitions sharing a pool, live");
  c->add_option("--pool", f->pool, "The pool the partitions share")->capture_default_str();
  c->add_option("--partitions", f->partitions, "How many partitions (web, db, batch, idle, web, ...)")
      ->capture_default_str();
  c->add_option("--overcommit", f->overcommit, "Their RAM together, as a multiple of the pool")->capture_default_str();
  c->add_option("--duration", f->duration, "Seconds to run")->capture_default_str();
  c->add_flag("--compare", f->compare, "Run again with the balloon disabled and compare");
  c->footer("Examples:\n  cmm demo\n  cmm demo --pool 512M --duration 30 --compare");
  return [f] { return RunDemo(*f); };
}

}  // namespace cmm::cli
