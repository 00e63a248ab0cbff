// `cmm demo`: one hypervisor and four partitions as real processes sharing
// a pool a third of their size, with a live view and a summary at the end.
#include <signal.h>

#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/size_text.h"
#include "demo/runner.h"
#include "demo/scenario.h"
#include "demo/summary.h"

namespace cmm::cli {

namespace {

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
  const std::string exe = SelfExe();
  bool ok = false;
  demo::Summary on;
  {
    demo::Run run(s, exe, true, o.duration_s, g_stop);
    auto done = run.Go(ok);
    if (!done) throw UserError(done.error());
    on = *done;
  }
  std::optional<demo::Summary> off;
  if (f.compare && !g_stop) {
    fmt::print("\nthe same run with the balloon disabled, for comparison\n");
    std::fflush(stdout);
    bool ok_off = false;
    demo::Run run(s, exe, false, o.duration_s, g_stop);
    auto done = run.Go(ok_off);
    if (!done) throw UserError(done.error());
    off = *done;
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
