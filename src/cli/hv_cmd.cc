// `cmm hv`: run the hypervisor that owns the pool; `cmm hv status`: show it.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/hv_call.h"
#include "cli/hv_watch.h"
#include "ctl/client.h"
#include "ctl/http_server.h"
#include "ctl/hv_service.h"
#include "ctl/paths.h"
#include "ctl/server.h"
#include "host/host_memory.h"
#include "hv/metrics.h"
#include "pool/monitor.h"
#include "pool/pool.h"
#include "pool/rebalancer.h"
#include "members/partition/server.h"
#include "hv/kept_state.h"
#include "hv/status.h"
#include "members/libvirt/libvirt_adapter.h"
#include "members/qemu/vm_adapter.h"
#include "hv/web/page.h"
#include "sim/recorder.h"

namespace cmm::cli {

namespace {

using json = nlohmann::json;

struct HvFlags {
  std::string pool;
  std::string socket;
  std::string control;
  int period_ms = 1000;
  double headroom_percent = 100 * hv::PolicyConfig{}.headroom;
  double peak_window_s = hv::PolicyConfig{}.peak_window_s;
  double growth_lead_s = hv::PolicyConfig{}.growth_lead_s;
  bool no_batch = false;
  bool json_out = false;
  std::string http;
  uint32_t fail_loan_percent = 0;
  std::string reserve = "512M";
  std::string record;
  std::string state;
  std::optional<std::string> libvirt;  // --libvirt [URI]
  std::string libvirt_select = "all";
  // cmm hv set
  std::string name;
  std::optional<int> weight;
  std::string min;
  std::string max;
  // cmm hv watch
  HvWatchOptions watch;
};

std::string HcallPath(const HvFlags& f) { return f.socket.empty() ? ctl::RunDir() + "/hv.hcall" : f.socket; }
std::string ControlPath(const HvFlags& f) { return f.control.empty() ? ctl::RunDir() + "/hv.ctl" : f.control; }
std::string StatePath(const HvFlags& f) { return f.state.empty() ? ctl::RunDir() + "/hv.state" : f.state; }

// The VMs kept from before a restart are attached again, each with its
// deadline, off the main thread: the pool and its control socket serve
// meanwhile. Those that cannot be (their QEMU gone) are said and forgotten.
void Readopt(hv::VmAdapter& vms, hv::StateKeeper& keeper, const std::vector<hv::KeptVm>& kept) {
  for (const hv::KeptVm& k : kept) {
    if (kill(k.pid, 0) != 0 && errno == ESRCH) {
      spdlog::warn("vm {}: not attached again: its QEMU (pid {}) is gone", k.name, k.pid);
      keeper.Forget(k.name);
      continue;
    }
    hv::VmOptions o;
    o.name = k.name;
    o.qmp_path = k.qmp;
    o.pid = k.pid;
    const auto terms = keeper.Terms(k.name).value_or(hv::MemberSettings{});
    if (auto vm = vms.Attach(o, terms); vm) {
      spdlog::info("vm {}: attached again after the restart, with its terms", k.name);
    } else if (vm.error().code == ErrorCode::kExists) {
      spdlog::info("vm {}: already back in the pool", k.name);
    } else {
      spdlog::warn("vm {}: not attached again: {}", k.name, vm.error().message);
      keeper.Forget(k.name);
    }
  }
}

int RunHv(const HvFlags& f) {
  // A peer that goes away mid-write (libvirtd killed under its connection's
  // keepalive, a QEMU, a partition) is an error on that write, never the
  // end of the hypervisor: libvirt's client writes without MSG_NOSIGNAL.
  signal(SIGPIPE, SIG_IGN);
  if (f.state.empty() || f.socket.empty() || f.control.empty()) {
    if (auto d = ctl::EnsureDir(ctl::RunDir()); !d) throw UserError(d.error());
  }
  hv::StateKeeper keeper(StatePath(f));
  hv::PoolOptions o;
  o.kept_terms = [&keeper](const std::string& name) { return keeper.Terms(name); };
  // Set once the libvirt adapter runs, cleared before it goes: terms that
  // change are kept in a domain's <metadata> too.
  std::atomic<hv::LibvirtAdapter*> domains{nullptr};
  o.on_terms = [&keeper, &domains](const std::string& name, const hv::MemberSettings& t) {
    keeper.SetTerms(name, t);
    if (hv::LibvirtAdapter* d = domains.load()) d->TermsChanged(name, t);
  };
  o.on_left = [&keeper](const std::string& name) { keeper.Forget(name); };
  o.policy.headroom = f.headroom_percent / 100;
  o.policy.peak_window_s = f.peak_window_s;
  o.policy.growth_lead_s = f.growth_lead_s;
  if (f.pool == "auto") {
    const auto reserve = ParseBytes(f.reserve);
    if (!reserve) throw UserError(fmt::format("--reserve {}: not a size; try 512M", f.reserve), kExitUsage);
    const auto host = hv::ReadHostMemory();
    if (!host) throw UserError(fmt::format("--pool auto: {}", host.error().message));
    o.pool_bytes = hv::AutoPoolBytes(*host, Bytes(0), *reserve);
    if (o.pool_bytes == Bytes(0)) {
      throw UserError(fmt::format("--pool auto: the host has {} available, not more than the {} reserve; lower "
                                  "--reserve or give a size",
                                  FormatBytes(host->available_bytes), FormatBytes(*reserve)));
    }
    o.sizer = [reserve = *reserve, last = o.pool_bytes](Bytes backing) mutable {
      if (const auto h = hv::ReadHostMemory()) last = hv::AutoPoolBytes(*h, backing, reserve);
      return last;  // a failed read keeps the last size
    };
  } else {
    const auto pool_bytes = ParseBytes(f.pool);
    if (!pool_bytes || *pool_bytes == Bytes(0)) {
      throw UserError(fmt::format("--pool {}: not a size; try 4G, or auto", f.pool), kExitUsage);
    }
    o.pool_bytes = *pool_bytes;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  if (f.socket.empty() || f.control.empty()) {
    if (auto d = ctl::EnsureDir(ctl::RunDir()); !d) throw UserError(d.error());
  }
  hv::HcallOptions hcall;
  hcall.batch = !f.no_batch;
  hcall.faults.fail_loan_percent = f.fail_loan_percent;
  // Each partition holds two descriptors here (its socket and its memfd):
  // take all the system lets this process have.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
  hv::Pool pool(o);
  auto server = hv::HvServer::Start(HcallPath(f), pool, hcall);
  if (!server) throw UserError(fmt::format("hypervisor: {}", server.error().message));
  hv::HcallStats& hcall_stats = (*server)->hcall_stats();
  hv::VmAdapter vms(pool, std::chrono::milliseconds(f.period_ms), [&keeper](const hv::VmOptions& vm, pid_t pid) {
    keeper.AddVm({vm.name, vm.qmp_path, pid});
  });
  hv::PoolMonitor monitor;
  ctl::HvService service{pool, vms, monitor};
  auto control = ctl::Server::Start(ControlPath(f), [&service](const json& req, const ctl::Peer& peer) {
    return ctl::HandleHvRequest(service, req, peer);
  }, /*workers=*/8);
  if (!control) throw UserError(fmt::format("hypervisor control socket: {}", control.error()));
  std::unique_ptr<ctl::HttpServer> http;
  if (!f.http.empty()) {
    ctl::HttpRoutes routes;
    routes["/"] = [](const ctl::HttpQuery&) {
      return ctl::HttpBody{"text/html; charset=utf-8", std::string(hv::PageHtml())};
    };
    routes["/metrics"] = [&pool, &hcall_stats](const ctl::HttpQuery&) {
      return ctl::HttpBody{"text/plain; version=0.0.4",
                           hv::PrometheusText(pool.pool_bytes(), pool.feasibility(), pool.Snapshot(),
                                              hcall_stats.Read())};
    };
    routes["/status"] = [&pool](const ctl::HttpQuery&) {
      return ctl::HttpBody{"application/json", hv::StatusJson(pool).dump(2) + "\n"};
    };
    routes["/live"] = [&service](const ctl::HttpQuery& q) { return ctl::HvLivePage(service, q); };
    auto started = ctl::HttpServer::Start(f.http, std::move(routes));
    if (!started) throw UserError(started.error(), kExitUsage);
    http = std::move(*started);
  }
  std::optional<sim::Recorder> recorder;
  if (!f.record.empty()) {
    auto opened = sim::Recorder::Open(f.record, o.pool_bytes);
    if (!opened) throw UserError(fmt::format("--record: {}", opened.error()));
    recorder.emplace(std::move(*opened));
  }
  const auto started_at = std::chrono::steady_clock::now();
  auto last_flush = started_at;
  auto record = [&](const std::vector<hv::MemberView>& members) {
    if (!recorder) return;
    const auto now = std::chrono::steady_clock::now();
    const auto t = std::chrono::duration_cast<std::chrono::seconds>(now - started_at).count();
    recorder->Sample(static_cast<uint32_t>(t), pool.pool_bytes(), members);
    if (now - last_flush >= std::chrono::seconds(10)) {
      last_flush = now;
      if (auto ok = recorder->Flush(); !ok) spdlog::warn("--record: {}", ok.error());
    }
  };
  auto after_round = [&] {
    vms.Reap();
    // One reading of the members a round: the recording and the history
    // see the same state.
    const auto members = pool.Snapshot();
    record(members);
    monitor.Observe(ctl::UnixMs(), pool.pool_bytes(), pool.feasibility(), members);
  };
  std::optional<hv::Rebalancer> rebalancer;
  rebalancer.emplace(pool, std::chrono::milliseconds(f.period_ms), after_round);
  std::unique_ptr<hv::LibvirtAdapter> libvirt;
  if (f.libvirt) {
    hv::LibvirtOptions lo;
    if (!f.libvirt->empty()) lo.uri = *f.libvirt;
    lo.period = std::chrono::milliseconds(f.period_ms);
    lo.tagged_only = f.libvirt_select == "tagged";
    auto started = hv::LibvirtAdapter::Start(pool, lo);
    if (!started) {
      throw UserError(fmt::format("--libvirt: {}; is libvirtd running (systemctl start libvirtd)?",
                                  started.error().message));
    }
    libvirt = std::move(*started);
    domains.store(libvirt.get());
    fmt::print("hypervisor: libvirt's domains at {} are in the pool{}\n", lo.uri,
               lo.tagged_only ? " (those whose <metadata> says manage=\"yes\")" : "");
  }
  const auto kept_vms = keeper.Vms();
  std::thread readopt([&vms, &keeper, kept_vms] { Readopt(vms, keeper, kept_vms); });
  fmt::print("hypervisor: pool {}, partitions register at {}, control at {}\n", FormatBytes(o.pool_bytes), HcallPath(f),
             ControlPath(f));
  if (o.sizer) fmt::print("hypervisor: --pool auto: {} reserved for the host, the pool follows MemAvailable\n",
                          f.reserve);
  if (http) {
    fmt::print("hypervisor: watch the pool at http://127.0.0.1:{}/ (metrics at /metrics, status at /status)\n",
               http->port());
  }
  if (f.fail_loan_percent != 0) fmt::print("hypervisor: failing {}% of page loans on purpose\n", f.fail_loan_percent);
  if (recorder) fmt::print("hypervisor: recording the members into {}\n", recorder->path());
  std::fflush(stdout);
  if (!kept_vms.empty()) fmt::print("hypervisor: attaching {} VMs kept from before (see the log)\n", kept_vms.size());
  if (!keeper.note().empty()) fmt::print("hypervisor: {}\n", keeper.note());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  // What the members leave behind now (stopping drops them all) is kept
  // as it was, for the next start to take them back.
  keeper.Freeze();
  readopt.join();
  rebalancer.reset();  // no more rounds: the recording below is the last
  if (recorder) {
    if (auto ok = recorder->Flush(); ok) {
      fmt::print("hypervisor: recorded {} members into {} (replay: cmm sim --trace {})\n", recorder->members(),
                 recorder->path(), recorder->path());
    } else {
      spdlog::error("--record: {}", ok.error());
    }
  }
  const size_t n = pool.Snapshot().size();
  domains.store(nullptr);
  libvirt.reset();
  http.reset();
  control->reset();
  server->reset();
  fmt::print("hypervisor: {} received, {} members dropped (VMs keep running); stopped\n", sig == SIGINT ? "SIGINT" : "SIGTERM", n);
  return 0;
}

int HvSet(const HvFlags& f) {
  json req = {{"op", "set"}, {"name", f.name}};
  if (f.weight) req["weight"] = *f.weight;
  PutSize(req, "min_bytes", "--min", f.min, "512M");
  PutSize(req, "max_bytes", "--max", f.max, "512M");
  if (req.size() == 2) throw UserError("say what to change: --weight, --min or --max", kExitUsage);
  const json reply = CallHypervisor(ControlPath(f), req, "cmm hv set " + f.name);
  fmt::print("{}: weight {}, min {}, max {}\n", f.name, reply["weight"].get<int>(), FormatBytes(reply["min_bytes"]),
             reply["max_bytes"].get<uint64_t>() == 0 ? "its RAM" : FormatBytes(reply["max_bytes"]));
  return 0;
}

int HvStatus(const HvFlags& f) {
  json s = CallHypervisor(ControlPath(f), {{"op", "status"}}, "cmm hv status");
  if (f.json_out) {
    s.erase("ok");
    fmt::print("{}\n", s.dump(2));
    return 0;
  }
  const auto st = s.get<hv::HvStatus>();
  const uint64_t pool = st.pool_bytes, backing = st.backing_bytes, ram = st.ram_bytes;
  fmt::print("pool {}: backing {} ({:.0f}%), {} with {} of RAM ({:.2f}x the pool)\n", FormatBytes(pool),
             FormatBytes(backing), pool ? 100.0 * static_cast<double>(backing) / static_cast<double>(pool) : 0.0,
             hv::KindsText(st.partitions), FormatBytes(ram),
             pool ? static_cast<double>(ram) / static_cast<double>(pool) : 0.0);
  if (st.giveback_reserve_bytes > 0) {
    fmt::print("kept back for OOM give-backs: {} (the most taken back in one round lately)\n",
               FormatBytes(st.giveback_reserve_bytes));
  }
  if (!st.problem.empty()) fmt::print("{}\n", st.problem);
  for (const std::string& note : st.notes) fmt::print("note: {}\n", note);
  fmt::print("{:<16} {:<9} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>5}  {}\n", "NAME", "KIND", "RAM", "BACKING",
             "LOANED", "TARGET", "WEIGHT", "FREE", "OOMS", "NOTES");
  for (const auto& p : st.partitions) {
    std::string notes;
    if (p.condition != "at target" && p.condition != "unresponsive") notes = p.condition;
    auto add = [&notes](const std::string& more) { notes += (notes.empty() ? "" : "; ") + more; };
    if (p.kind == "vm") add(fmt::format("backing from {}, QEMU's own {}", p.backing_source, FormatBytes(p.own_bytes)));
    if (p.kind == "domain") {
      add(fmt::format("{}, QEMU pid {}, its own {}", p.uri, p.pid, FormatBytes(p.own_bytes)));
    }
    if (!p.responsive) add("UNRESPONSIVE: " + p.note);
    if (const std::string pressure = hv::PressureText(p); !pressure.empty()) add("pressure: " + pressure);
    fmt::print("{:<16} {:<9} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10} {:>5}  {}\n", p.name, p.kind,
               FormatBytes(p.ram_bytes), FormatBytes(p.backing_bytes), FormatBytes(p.loaned_bytes),
               FormatBytes(p.target_loaned_bytes), p.weight, FormatBytes(p.free_bytes), p.oom_events, notes);
  }
  return 0;
}

}  // namespace

Runner AddHv(CLI::App& app) {
  auto f = std::make_shared<HvFlags>();
  auto* c = app.add_subcommand("hv", "Run the hypervisor: a shared pool that partitions loan memory to");
  c->add_option("--pool", f->pool,
                "Host memory the partitions share, e.g. 4G; auto: what the host has available, less --reserve, "
                "shrunk under memory pressure (/proc/pressure/memory), followed as it changes");
  c->add_option("--reserve", f->reserve, "With --pool auto: host memory kept out of the pool")->capture_default_str();
  c->add_option("--socket", f->socket, "Where partitions register (default: <run dir>/hv.hcall)");
  c->add_option("--control", f->control, "Control socket for `cmm hv status` (default: <run dir>/hv.ctl)");
  c->add_option("--period-ms", f->period_ms, "How often the pool policy runs")->capture_default_str()->check(
      CLI::Range(10, 60000));
  c->add_option("--headroom", f->headroom_percent,
                "Percent of its RAM each member keeps idle, where its next burst lands, before any of its idle "
                "memory is asked for (`cmm sim --sweep` shows the trade)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 50.0));
  c->add_option("--peak-window", f->peak_window_s,
                "Seconds over which a member's memory of a burst that met its OOM path fades: room left over goes "
                "first to take it back to that peak (0: no memory of peaks)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  c->add_option("--growth-lead", f->growth_lead_s,
                "Seconds of a member's growing use it is given room for ahead of time, asked of the others' idle "
                "memory before it is short: about a stats period plus a round (0: growth not followed ahead)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  c->add_flag("--no-batch", f->no_batch, "Do not offer the batched page-state call");
  c->add_option("--http", f->http, "Serve the pool's web page (/), /metrics (Prometheus) and /status (JSON) at 127.0.0.1:PORT (0: any free port)");
  c->add_option("--libvirt", f->libvirt,
                "Put libvirt's running domains (those with a virtio memballoon) in the pool, through libvirt at URI "
                "(default qemu:///system)")
      ->expected(0, 1);
  c->add_option("--libvirt-select", f->libvirt_select,
                "With --libvirt: all running domains with a balloon, or only those tagged in their <metadata> "
                "(<cmm:terms manage=\"yes\"/>)")
      ->check(CLI::IsMember({"all", "tagged"}))
      ->capture_default_str();
  c->add_option("--state", f->state,
                "Where the members' terms and the attached VMs are kept across restarts (default: <run dir>/hv.state)");
  c->add_option("--record", f->record,
                "Write the members' terms and use, once a second, as a trace for `cmm sim --trace` (JSON)");
  c->add_option("--inject-loan-failures", f->fail_loan_percent,
                "Testing aid: answer this percent of page loans with H_HARDWARE")
      ->check(CLI::Range(0, 100));
  auto* status = c->add_subcommand("status", "Show the pool and each partition");
  status->add_option("--control", f->control, "Control socket (default: <run dir>/hv.ctl)");
  status->add_flag("--json", f->json_out, "Print JSON");
  auto* watch = c->add_subcommand("watch", "Live view of the whole pool: the pool bar, every member, the last events");
  watch->add_option("--control", f->control, "Control socket (default: <run dir>/hv.ctl)");
  watch->add_option("--interval", f->watch.interval_s, "Seconds between refreshes")->capture_default_str()->check(
      CLI::Range(0.1, 3600.0));
  watch->add_option("--count", f->watch.count, "Stop after this many refreshes (0: until q or Ctrl-C)")->check(
      CLI::NonNegativeNumber);
  watch->add_option("--sort", f->watch.sort, "Sort members by name, RAM, used, free, loaned, backing, weight or OOM events")
      ->capture_default_str();
  watch->footer("Keys: n r u f l b w o sort (again: the other way round), q quits.\nWithout a terminal: one line per "
                "refresh.\nExample:\n  cmm hv watch --sort backing");
  auto* set = c->add_subcommand("set", "Change a partition's weight, min or max for the pool policy (uid 0)");
  set->add_option("name", f->name, "The partition")->required();
  set->add_option("--weight", f->weight, "PAPR memory weight 0-255: higher loans less")->check(CLI::Range(0, 255));
  set->add_option("--min", f->min, "Never ask it below this much usable memory, e.g. 256M");
  set->add_option("--max", f->max, "Usable memory above this is always loaned, e.g. 1G");
  set->add_option("--control", f->control, "Control socket (default: <run dir>/hv.ctl)");
  c->footer(
      "Examples:\n  cmm hv --pool 1G\n  cmm guest --name web1 --mem 768M      (registers with it)\n  cmm hv status\n"
      "  cmm hv set web1 --weight 200 --min 256M\n  cmm hv watch");
  return [f, status, set, watch] {
    if (status->parsed()) return HvStatus(*f);
    if (watch->parsed()) {
      f->watch.control = ControlPath(*f);
      return HvWatch(f->watch);
    }
    if (set->parsed()) return HvSet(*f);
    if (f->pool.empty()) throw UserError("--pool SIZE is required to run the hypervisor, e.g. --pool 4G", kExitUsage);
    return RunHv(*f);
  };
}

}  // namespace cmm::cli
