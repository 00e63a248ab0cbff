// `cmm guest`: run one partition until SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/control_files.h"
#include "core/mutex.h"
#include "core/params.h"
#include "ctl/partition_service.h"
#include "ctl/paths.h"
#include "guest/partition.h"

namespace cmm::cli {

namespace {

struct GuestFlags {
  std::string name;
  bool simulate = false;
  std::string mem = "1G";
  std::string max_mem;
  std::string block;
  std::string page_size = "4K";
  std::vector<std::string> params;
  std::vector<std::string> workloads;
  std::string socket;
  std::string hv;
  int weight = 128;
  bool no_batch = false;
  std::string pool_min;
  std::string pool_max;
};

guest::PartitionOptions Options(const GuestFlags& f) {
  guest::PartitionOptions o;
  if (!ctl::ValidName(f.name)) {
    throw UserError(fmt::format("partition name \"{}\" is not valid: use {}", f.name, kNameRule), kExitUsage);
  }
  o.name = f.name;
  const auto mem = ParseBytes(f.mem);
  if (!mem || *mem == Bytes(0)) throw UserError(fmt::format("--mem {}: not a size; try 512M or 2G", f.mem), kExitUsage);
  o.ram_bytes = *mem;
  if (!f.max_mem.empty()) {
    const auto max = ParseBytes(f.max_mem);
    if (!max || *max < *mem) {
      throw UserError(fmt::format("--max-mem {}: not a size of at least --mem {}", f.max_mem, f.mem), kExitUsage);
    }
    o.max_bytes = *max;
  }
  if (!f.block.empty()) {
    const auto block = ParseBytes(f.block);
    if (!block || *block == Bytes(0)) throw UserError(fmt::format("--block {}: not a size; try 128M", f.block), kExitUsage);
    o.block_bytes = *block;
  }
  const auto page = ParseSize(f.page_size);
  if (!page || (*page != 4096 && *page != 65536)) {
    throw UserError(fmt::format("--page-size {}: must be 4K or 64K", f.page_size), kExitUsage);
  }
  o.page_size = *page;
  if (o.ram_bytes % Bytes(static_cast<int64_t>(o.page_size)) != Bytes(0)) {
    throw UserError(fmt::format("--mem {} is not a whole number of {} pages", f.mem, FormatBytes(o.page_size)),
                    kExitUsage);
  }
  for (const auto& text : f.workloads) {
    auto spec = guest::ParseWorkload(text);
    if (!spec) throw UserError(fmt::format("--workload {}", spec.error()), kExitUsage);
    o.workloads.push_back(std::move(*spec));
  }
  o.params.simulate = f.simulate;
  if (f.simulate && !f.hv.empty()) throw UserError("--simulate and --hv exclude each other", kExitUsage);
  o.weight = static_cast<uint8_t>(f.weight);
  o.batch = !f.no_batch;
  for (const auto& [flag, text, out] : {std::tuple{"--pool-min", &f.pool_min, &o.pool_min_bytes},
                                        std::tuple{"--pool-max", &f.pool_max, &o.pool_max_bytes}}) {
    if (text->empty()) continue;
    const auto bytes = ParseBytes(*text);
    if (!bytes || *bytes > o.ram_bytes) {
      throw UserError(fmt::format("{} {}: not a size within --mem {}", flag, *text, f.mem), kExitUsage);
    }
    if (f.simulate) throw UserError(fmt::format("{} is for the hypervisor's policy; not with --simulate", flag), kExitUsage);
    *out = *bytes;
  }
  for (const auto& kv : f.params) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) {
      throw UserError(fmt::format("--param {}: expected KEY=VALUE, e.g. --param delay=2", kv), kExitUsage);
    }
    const std::string key = kv.substr(0, eq);
    const int rc = SetParamAtStart(o.params, key, kv.substr(eq + 1));
    if (rc == ENOENT) {
      throw UserError(
          fmt::format("--param {}: no parameter named {}; known: {}", kv, key, fmt::join(ParamNames(), ", ")),
          kExitUsage);
    }
    if (rc != 0) {
      throw UserError(fmt::format("--param {}: invalid value for {} ({})", kv, key, ctl::ErrnoName(rc)), kExitUsage);
    }
  }
  return o;
}

// The first boot: a partition that cannot be made is a user error.
std::unique_ptr<guest::Partition> Boot(const guest::PartitionOptions& o) {
  auto partition = guest::Partition::Create(o);
  if (!partition && partition.error().code == ErrorCode::kUnavailable) {
    // S9: no platform support for CMO is EOPNOTSUPP; here that is no hypervisor.
    throw UserError(fmt::format("partition {}: no hypervisor with CMO support ({}): {}; start one with `cmm hv "
                                "--pool SIZE`, or run with --simulate to use simulate_loan_target_kb instead",
                                o.name, ctl::ErrnoName(EOPNOTSUPP), partition.error().message));
  }
  if (!partition) throw UserError(fmt::format("cannot create partition {}: {}", o.name, partition.error().message));
  return std::move(*partition);
}

// After a restart: the hypervisor drops the old registration when the old
// connection closes, so a new one may be refused for a moment; try again
// for a few seconds.
Result<std::unique_ptr<guest::Partition>> Reboot(const guest::PartitionOptions& o) {
  auto made = guest::Partition::Create(o);
  for (int i = 0; i < 50 && !made; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    made = guest::Partition::Create(o);
  }
  return made;
}

int RunGuest(const GuestFlags& f) {
  guest::PartitionOptions o = Options(f);
  if (!o.params.simulate) o.hv_socket = f.hv.empty() ? ctl::RunDir() + "/hv.hcall" : f.hv;
  // Signals are taken by sigwait below; block them before any thread
  // starts. SIGUSR1 is a restart (`cmm reboot`).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The partition of this boot; requests share it, a restart swaps it.
  struct Current {
    SharedMutex mu;
    std::unique_ptr<guest::Partition> partition GUARDED_BY(mu);
  } current;
  guest::Partition* up = nullptr;  // the same, for this thread alone (the only one that swaps it)
  {
    WriterLock lock(current.mu);
    current.partition = Boot(o);
    up = current.partition.get();
  }
  std::atomic<uint64_t> boot{1};
  std::atomic<int64_t> returned_on_restart{-1};

  const std::string path = f.socket.empty() ? ctl::SocketPathFor(o.name) : f.socket;
  if (f.socket.empty()) {
    if (auto d = ctl::EnsureDir(ctl::RunDir()); !d) throw UserError(d.error());
  }
  auto server = ctl::Server::Start(path, [&](const nlohmann::json& req, const ctl::Peer& peer) {
    const std::string op = req.value("op", "");
    if (op == "reboot") {
      if (!peer.admin()) return ctl::ErrorReply(EPERM, "restarting a partition needs uid 0");
      kill(getpid(), SIGUSR1);  // the main thread runs the restart
      return nlohmann::json{{"ok", true}, {"boot", boot.load()}};
    }
    ReaderLock lock(current.mu);
    return ctl::HandlePartitionRequest(*current.partition, req, peer, {boot.load(), returned_on_restart.load()});
  });
  if (!server) {
    throw UserError(fmt::format("partition {}: control socket: {}; is a partition of that name running? (cmm list)",
                                o.name, server.error()));
  }

  if (const int rc = up->Start(); rc != 0) {
    throw UserError(fmt::format("partition {}: the CMM driver did not start: {} ({})", o.name, std::strerror(rc),
                                ctl::ErrnoName(rc)));
  }
  fmt::print("partition {}: {} of guest RAM ({} pages of {}), {} mode, control socket {}\n", o.name,
             FormatBytes(o.ram_bytes), PageGeometry(o.page_size).WholePages(o.ram_bytes).value(), FormatBytes(o.page_size),
             o.params.simulate ? "simulate" : "hypervisor", path);
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGUSR1) break;
    // S11: the restart chain, then the guest as at start (its RAM, the
    // parameters it was given, a balloon that registers again).
    WriterLock lock(current.mu);
    const int64_t returned = up->Restart();
    const int64_t left = up->controller().loaned().value();
    const uint64_t errors = up->memory().integrity_errors();
    up = nullptr;
    current.partition.reset();
    auto made = Reboot(o);
    if (!made) {
      spdlog::error("partition {}: restarted, but cannot come up again: {}", o.name, made.error().message);
      return kExitError;
    }
    current.partition = std::move(*made);
    up = current.partition.get();
    if (const int rc = up->Start(); rc != 0) {
      spdlog::error("partition {}: restarted, but the CMM driver did not start: {}", o.name, ctl::ErrnoName(rc));
      return kExitError;
    }
    returned_on_restart = returned;
    ++boot;
    fmt::print("partition {}: restart: {} loaned pages returned, {} still loaned, {} integrity errors; up again "
               "(boot {})\n",
               o.name, returned, left, errors, boot.load());
    std::fflush(stdout);
    if (errors != 0) return kExitError;
  }
  guest::Partition& p = *up;
  const int64_t loaned = p.controller().loaned().value();
  p.Stop();
  server->reset();
  const uint64_t errors = p.memory().integrity_errors();
  fmt::print("partition {}: {} received, {} loaned pages returned, {} still loaned, {} integrity errors; stopped\n",
             o.name, sig == SIGINT ? "SIGINT" : "SIGTERM", loaned, p.controller().loaned().value(), errors);
  if (errors != 0) spdlog::error("partition {}: last integrity error: {}", o.name, p.memory().last_integrity_error());
  return errors == 0 ? 0 : kExitError;
}

}  // namespace

Runner AddGuest(CLI::App& app) {
  auto f = std::make_shared<GuestFlags>();
  auto* c = app.add_subcommand("guest", "Run a partition: guest RAM in a memfd with the CMM balloon inside");
  c->add_option("--name", f->name, "Partition name (also names its control socket)")->required();
  c->add_flag("--simulate", f->simulate, "No hypervisor: the target comes from simulate_loan_target_kb");
  c->add_option("--mem", f->mem, "Guest RAM size, e.g. 512M, 2G")->capture_default_str();
  c->add_option("--page-size", f->page_size, "Guest page size: 4K or 64K")->capture_default_str();
  c->add_option("--max-mem", f->max_mem, "Room for hot-add (cmm mem add); default: --mem");
  c->add_option("--block", f->block, "Memory block size; default 128M, halved until it divides the RAM sizes");
  c->add_option("--param", f->params, "Module parameter at start, KEY=VALUE (repeatable)");
  c->add_option("--workload", f->workloads,
                 "Run a workload (repeatable): hog:SIZE[:RATE], unmovable:SIZE[:RATE], cache:SIZE[:RATE], "
                 "phases:FILE.json");
  c->add_option("--socket", f->socket, "Control socket path (default: <run dir>/<name>.sock)");
  c->add_option("--hv", f->hv, "The hypervisor's socket (default: <run dir>/hv.hcall)");
  c->add_option("--pool-min", f->pool_min, "The pool policy never asks it below this much usable memory "
                                          "(default: min_mem_mb)");
  c->add_option("--pool-max", f->pool_max, "The pool policy always has it loan what is above this (default: --mem)");
  c->add_flag("--no-batch", f->no_batch, "One hcall per CMO page, as the seed driver does, even if batches are offered");
  c->add_option("--weight", f->weight, "PAPR memory weight 0-255: higher loans less")->capture_default_str()->check(
      CLI::Range(0, 255));
  c->footer(
      "Example:\n  cmm guest --simulate --name web1 --mem 1G --param debug=1\n"
      "  then, in another shell: cmm set web1 simulate_loan_target_kb 262144\n"
      "  cmm guest --simulate --name db1 --mem 1G --workload hog:512M:128M --workload cache:256M\n"
      "  cmm guest --name web2 --mem 768M --workload cache:512M     (with `cmm hv --pool 1G` running)");
  return [f] { return RunGuest(*f); };
}

}  // namespace cmm::cli
