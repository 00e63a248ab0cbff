// `cmm hv`: run the hypervisor that owns the pool; `cmm hv status`: show it.
#include <signal.h>

#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "ctl/client.h"
#include "ctl/paths.h"
#include "ctl/server.h"
#include "hv/pool.h"
#include "hv/server.h"

namespace cmm::cli {

namespace {

using json = nlohmann::json;

struct HvFlags {
  std::string pool;
  std::string socket;
  std::string control;
  int period_ms = 1000;
  bool no_batch = false;
  bool json_out = false;
};

std::string HcallPath(const HvFlags& f) { return f.socket.empty() ? ctl::RunDir() + "/hv.hcall" : f.socket; }
std::string ControlPath(const HvFlags& f) { return f.control.empty() ? ctl::RunDir() + "/hv.ctl" : f.control; }

json StatusOf(hv::Pool& pool) {
  json parts = json::array();
  uint64_t backing = 0, ram = 0;
  for (const auto& v : pool.Snapshot()) {
    backing += v.backing_bytes;
    ram += v.ram_bytes;
    parts.push_back({{"name", v.name},
                     {"ram_bytes", v.ram_bytes},
                     {"backing_bytes", v.backing_bytes},
                     {"loaned_bytes", v.loaned_bytes},
                     {"target_loaned_bytes", v.target_loaned_bytes},
                     {"weight", v.weight},
                     {"free_bytes", v.stats.free_bytes},
                     {"used_bytes", v.stats.used_bytes},
                     {"cache_bytes", v.stats.cache_bytes},
                     {"oom_events", v.stats.oom_events},
                     {"hcalls",
                      {{"get_mpp", v.counts.get_mpp},
                       {"page_init", v.counts.page_init},
                       {"page_init_failed", v.counts.page_init_failed},
                       {"batches", v.counts.batches},
                       {"releases", v.counts.releases}}}});
  }
  return {{"ok", true}, {"pool_bytes", pool.pool_bytes()}, {"backing_bytes", backing}, {"ram_bytes", ram},
          {"partitions", parts}};
}

int RunHv(const HvFlags& f) {
  const auto pool_bytes = ParseSize(f.pool);
  if (!pool_bytes || *pool_bytes == 0) throw UserError(fmt::format("--pool {}: not a size; try 4G", f.pool), kExitUsage);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  if (f.socket.empty() || f.control.empty()) {
    if (auto d = ctl::EnsureDir(ctl::RunDir()); !d) throw UserError(d.error());
  }
  hv::PoolOptions o;
  o.pool_bytes = *pool_bytes;
  o.batch = !f.no_batch;
  hv::Pool pool(o);
  auto server = hv::HvServer::Start(HcallPath(f), pool, std::chrono::milliseconds(f.period_ms));
  if (!server) throw UserError(fmt::format("hypervisor: {}", server.error()));
  auto control = ctl::Server::Start(ControlPath(f), [&pool](const json& req, const ctl::Peer&) {
    if (req.value("op", "") == "status") return StatusOf(pool);
    return ctl::ErrorReply(EINVAL, fmt::format("unknown request \"{}\"", req.value("op", "")));
  });
  if (!control) throw UserError(fmt::format("hypervisor control socket: {}", control.error()));
  fmt::print("hypervisor: pool {}, partitions register at {}, control at {}\n", FormatBytes(*pool_bytes), HcallPath(f),
             ControlPath(f));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  const size_t n = pool.Snapshot().size();
  control->reset();
  server->reset();
  fmt::print("hypervisor: {} received, {} partitions dropped; stopped\n", sig == SIGINT ? "SIGINT" : "SIGTERM", n);
  return 0;
}

int HvStatus(const HvFlags& f) {
  auto reply = ctl::Call(ControlPath(f), {{"op", "status"}});
  if (!reply) {
    throw UserError(fmt::format("no hypervisor answers at {}: {}; start one with `cmm hv --pool SIZE`", ControlPath(f),
                                reply.error().message));
  }
  json s = *reply;
  if (f.json_out) {
    s.erase("ok");
    fmt::print("{}\n", s.dump(2));
    return 0;
  }
  const uint64_t pool = s["pool_bytes"], backing = s["backing_bytes"], ram = s["ram_bytes"];
  fmt::print("pool {}: backing {} ({:.0f}%), {} partitions with {} of RAM ({:.2f}x the pool)\n", FormatBytes(pool),
             FormatBytes(backing), pool ? 100.0 * static_cast<double>(backing) / static_cast<double>(pool) : 0.0,
             s["partitions"].size(), FormatBytes(ram), pool ? static_cast<double>(ram) / static_cast<double>(pool) : 0.0);
  fmt::print("{:<16} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>5}\n", "NAME", "RAM", "BACKING", "LOANED", "TARGET",
             "WEIGHT", "FREE", "OOMS");
  for (const auto& p : s["partitions"]) {
    fmt::print("{:<16} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>5}\n", p["name"].get<std::string>(),
               FormatBytes(p["ram_bytes"]), FormatBytes(p["backing_bytes"]), FormatBytes(p["loaned_bytes"]),
               FormatBytes(p["target_loaned_bytes"]), p["weight"].get<int>(), FormatBytes(p["free_bytes"]),
               p["oom_events"].get<uint64_t>());
  }
  return 0;
}

}  // namespace

Runner AddHv(CLI::App& app) {
  auto f = std::make_shared<HvFlags>();
  auto* c = app.add_subcommand("hv", "Run the hypervisor: a shared pool that partitions loan memory to");
  c->add_option("--pool", f->pool, "Host memory the partitions share, e.g. 4G");
  c->add_option("--socket", f->socket, "Where partitions register (default: <run dir>/hv.hcall)");
  c->add_option("--control", f->control, "Control socket for `cmm hv status` (default: <run dir>/hv.ctl)");
  c->add_option("--period-ms", f->period_ms, "How often the pool policy runs")->capture_default_str()->check(
      CLI::Range(10, 60000));
  c->add_flag("--no-batch", f->no_batch, "Do not offer the batched page-state call");
  auto* status = c->add_subcommand("status", "Show the pool and each partition");
  status->add_option("--control", f->control, "Control socket (default: <run dir>/hv.ctl)");
  status->add_flag("--json", f->json_out, "Print JSON");
  c->footer(
      "Examples:\n  cmm hv --pool 1G\n  cmm guest --name web1 --mem 768M      (registers with it)\n  cmm hv status");
  return [f, status] {
    if (status->parsed()) return HvStatus(*f);
    if (f->pool.empty()) throw UserError("--pool SIZE is required to run the hypervisor, e.g. --pool 4G", kExitUsage);
    return RunHv(*f);
  };
}

}  // namespace cmm::cli
