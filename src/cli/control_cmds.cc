// Subcommands that talk to running partitions over their control sockets:
// get, set, param, status, watch, list.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "ctl/client.h"
#include "ctl/fuse_mount.h"
#include "ctl/partition_status.h"
#include "ctl/paths.h"
#include "hv/status.h"

namespace cmm::cli {

namespace {

using nlohmann::json;

struct Target {
  std::string name;
  std::string socket;  // overrides the run-dir path
};

// The partition NAME positional and --socket. A command that must name its
// partition (it takes more positionals after it) makes NAME required.
void AddTargetFlags(CLI::App* c, Target& t, bool name_required = false) {
  auto* name = c->add_option("name", t.name,
                             name_required ? "Partition name" : "Partition name (omit to list running partitions)");
  if (name_required) name->required();
  c->add_option("--socket", t.socket, "Control socket path (default: <run dir>/<name>.sock)");
}

std::vector<std::string> RunningNames() {
  std::vector<std::string> names;
  const std::string dir = ctl::RunDir();
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 5 && n.ends_with(".sock")) names.push_back(n.substr(0, n.size() - 5));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string RunningList() {
  const auto names = RunningNames();
  if (names.empty()) return fmt::format("no partitions are running (looked in {})", ctl::RunDir());
  return fmt::format("running: {}", fmt::join(names, ", "));
}

// The VMs and libvirt domains in the pool of the hypervisor at the default
// control socket; none when no hypervisor answers there.
std::vector<hv::MemberStatus> PoolVms() {
  std::vector<hv::MemberStatus> vms;
  auto reply = ctl::Call(ctl::RunDir() + "/hv.ctl", {{"op", "status"}});
  if (!reply || !(*reply).value("ok", false)) return vms;
  for (auto& m : reply->get<hv::HvStatus>().partitions) {
    if (m.kind == "vm" || m.kind == "domain") vms.push_back(std::move(m));
  }
  return vms;
}

std::string PathOf(const Target& t) {
  if (!t.socket.empty()) return t.socket;
  if (t.name.empty()) throw UserError(fmt::format("which partition? {}", RunningList()), kExitUsage);
  return ctl::SocketPathFor(t.name);
}

// Sends a request; a reply with ok=false becomes a one-line error.
json Request(const Target& t, const json& req, const std::string& what) {
  const std::string path = PathOf(t);
  auto reply = ctl::Call(path, req);
  if (!reply) {
    if (reply.error().code == ErrorCode::kUnavailable) {
      throw UserError(fmt::format("no partition {} is running (nothing listens at {}); {}",
                                  t.name.empty() ? path : t.name, path, RunningList()));
    }
    throw UserError(reply.error().message);
  }
  if (!(*reply)["ok"].get<bool>()) {
    const json& r = *reply;
    throw UserError(fmt::format("{}: {} ({})", what, r.value("message", "failed"), r.value("error", "?")));
  }
  return *reply;
}

std::string Trim(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Prints every file of a group as "name  value" lines.
void PrintGroup(const Target& t, const std::string& group) {
  const json files = Request(t, {{"op", "files"}}, "listing files")["files"];
  size_t width = 0;
  for (const auto& f : files) width = std::max(width, f["name"].get<std::string>().size());
  for (const auto& f : files) {
    if (f["group"] != group) continue;
    const std::string name = f["name"];
    const json r = Request(t, {{"op", "read"}, {"group", group}, {"file", name}}, "reading " + name);
    fmt::print("{:<{}}  {}\n", name, width, Trim(r["text"]));
  }
}

void ReadOne(const Target& t, const std::string& group, const std::string& file) {
  const json r = Request(t, {{"op", "read"}, {"group", group}, {"file", file}}, "reading " + file);
  fmt::print("{}", r["text"].get<std::string>());  // exactly the kernel's text, newline included
}

void WriteOne(const Target& t, const std::string& group, const std::string& file,
              const std::string& text) {
  Request(t, {{"op", "write"}, {"group", group}, {"file", file}, {"text", text}},
          fmt::format("writing \"{}\" to {}", text, file));
}

std::string Pages(const ctl::PartitionStatus& s, int64_t pages) {
  return fmt::format("{} ({} pages)", FormatBytes(s.BytesOf(pages)), pages);
}

void PrintStatus(const ctl::PartitionStatus& s) {
  fmt::print("partition {} (pid {}, {} mode)\n", s.name, s.pid, s.simulate ? "simulate" : "hypervisor");
  fmt::print("  guest RAM      {}, pages of {}\n", FormatBytes(s.ram_bytes), FormatBytes(s.page_size));
  fmt::print("  totalram       {}\n", Pages(s, s.totalram_pages));
  fmt::print("  free           {}\n", Pages(s, static_cast<int64_t>(s.free_pages)));
  fmt::print("  loaned         {}\n", Pages(s, s.loaned_pages));
  fmt::print("  loaned target  {}\n", Pages(s, s.loaned_target_pages));
  fmt::print("  oom freed      {}\n", Pages(s, s.oom_freed_pages));
  std::string state = s.disabled  ? "disabled"
                      : s.polling ? fmt::format("polling every {} s", s.delay_s)
                                  : "stopped";
  if (s.hotplug_in_progress) state += ", hot-remove in progress";
  fmt::print("  balloon        {}\n", state);
  fmt::print("  memory blocks  {} of {} online, {} each\n", s.blocks_online, s.blocks_total, FormatBytes(s.block_bytes));
  fmt::print("  in use         {} movable, {} unmovable, {} page cache\n",
             Pages(s, static_cast<int64_t>(s.movable_pages)), Pages(s, static_cast<int64_t>(s.unmovable_pages)),
             Pages(s, static_cast<int64_t>(s.cache_pages)));
  fmt::print("  oom events     {}\n", s.oom_events);
  fmt::print("  integrity      {} errors{}\n", s.integrity_errors,
             s.integrity_errors == 0 ? "" : fmt::format(" (last: {})", s.last_integrity_error));
  for (const auto& w : s.workloads) {
    fmt::print("  workload       {}: holds {} of {}, {} pages touched, {} failed allocations", w.spec,
               FormatBytes(w.held_pages * s.page_size), FormatBytes(w.target_pages * s.page_size), w.touched,
               w.alloc_failures);
    if (w.cache_hits + w.cache_misses > 0) fmt::print(", cache {} hits / {} misses", w.cache_hits, w.cache_misses);
    fmt::print("\n");
  }
}

// ---- get / set / param -------------------------------------------------

Runner AddGetImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto attr = std::make_shared<std::string>();
  auto* c = app.add_subcommand("get", "Read CMM attributes (/sys/devices/system/cmm/cmm0)");
  AddTargetFlags(c, *t);
  c->add_option("attr", *attr, "Attribute: loaned_kb, loaned_target_kb, oom_freed_kb, simulate_loan_target_kb");
  c->footer("Examples:\n  cmm get web1\n  cmm get web1 loaned_kb");
  return [t, attr] {
    if (attr->empty()) {
      PrintGroup(*t, "device");
    } else {
      ReadOne(*t, "device", *attr);
    }
    return 0;
  };
}

Runner AddSetImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto attr = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();
  auto* c = app.add_subcommand("set", "Write a CMM attribute, with the kernel's rules and errors");
  AddTargetFlags(c, *t, /*name_required=*/true);
  c->add_option("attr", *attr, "Attribute: oom_freed_kb, simulate_loan_target_kb")->required();
  c->add_option("value", *value, "Text to write, as `echo -n VALUE >` would")->required();
  c->footer("Examples:\n  cmm set web1 simulate_loan_target_kb 262144\n  cmm set web1 oom_freed_kb 0");
  return [t, attr, value] {
    WriteOne(*t, "device", *attr, *value);
    return 0;
  };
}

Runner AddParamImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto kv = std::make_shared<std::string>();
  auto* c = app.add_subcommand("param", "Read or write module parameters (/sys/module/cmm/parameters)");
  AddTargetFlags(c, *t);
  c->add_option("key", *kv, "KEY to read, or KEY=VALUE to write");
  c->footer("Examples:\n  cmm param web1\n  cmm param web1 delay\n  cmm param web1 delay=2\n  cmm param web1 disable=1");
  return [t, kv] {
    if (kv->empty()) {
      PrintGroup(*t, "parameters");
    } else if (const auto eq = kv->find('='); eq == std::string::npos) {
      ReadOne(*t, "parameters", *kv);
    } else {
      WriteOne(*t, "parameters", kv->substr(0, eq), kv->substr(eq + 1));
    }
    return 0;
  };
}

// ---- status / watch / list ----------------------------------------------

Runner AddStatusImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto as_json = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("status", "Show a partition's memory and balloon state");
  AddTargetFlags(c, *t);
  c->add_flag("--json", *as_json, "Print JSON");
  c->footer("Example:\n  cmm status web1 --json");
  return [t, as_json] {
    json s = Request(*t, {{"op", "status"}}, "status");
    if (*as_json) {
      s.erase("ok");
      fmt::print("{}\n", s.dump(2));
    } else {
      PrintStatus(s.get<ctl::PartitionStatus>());
    }
    return 0;
  };
}

Runner AddLparcfgImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto* c = app.add_subcommand("lparcfg", "Print a partition's /proc/ppc64/lparcfg memory view (from H_GET_MPP)");
  AddTargetFlags(c, *t);
  c->footer("Example:\n  cmm lparcfg web1");
  return [t] {
    if (t->socket.empty() && !t->name.empty() && !std::filesystem::exists(ctl::SocketPathFor(t->name))) {
      for (const auto& vm : PoolVms()) {
        if (vm.name == t->name) {
          throw UserError(fmt::format("{} is a QEMU VM, not a cmm partition: it has no H_GET_MPP view; see `cmm hv "
                                      "status` for its memory",
                                      t->name));
        }
      }
    }
    const json s = Request(*t, {{"op", "lparcfg"}}, "lparcfg");
    fmt::print("{}", s["text"].get<std::string>());
    return 0;
  };
}

Runner AddMountImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto dir = std::make_shared<std::string>();
  auto* c = app.add_subcommand("mount", "Mount a partition's kernel files (sysfs attributes, parameters, "
                                        "/proc/ppc64/lparcfg, /proc/meminfo) at DIR until Ctrl-C");
  AddTargetFlags(c, *t, true);
  c->add_option("dir", *dir, "An existing empty directory")->required()->check(CLI::ExistingDirectory);
  c->footer("Example:\n  cmm mount web1 /mnt/web1 &\n  cat /mnt/web1/sys/devices/system/cmm/cmm0/loaned_kb");
  return [t, dir] {
    const std::string path = PathOf(*t);
    (void)Request(*t, {{"op", "files"}}, "listing files");  // a clear error if it is not running
    auto served = ctl::ServeKernelTree(path, *dir, [&] {
      fmt::print("partition {}: kernel files mounted at {}; Ctrl-C or SIGTERM unmounts\n", t->name, *dir);
      std::fflush(stdout);
    });
    if (!served) throw UserError(fmt::format("cmm mount {}: {}", t->name, served.error()));
    fmt::print("partition {}: unmounted {}\n", t->name, *dir);
    return 0;
  };
}

volatile sig_atomic_t g_interrupted = 0;

Runner AddWatchImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto interval = std::make_shared<double>(1.0);
  auto count = std::make_shared<int>(0);
  auto* c = app.add_subcommand("watch", "Live view of a partition: target, loaned, totalram, oom_freed");
  AddTargetFlags(c, *t);
  c->add_option("--interval", *interval, "Seconds between refreshes")->capture_default_str()->check(
      CLI::Range(0.05, 3600.0));
  c->add_option("--count", *count, "Stop after this many refreshes (0: until Ctrl-C)");
  c->footer("Example:\n  cmm watch web1");
  return [t, interval, count] {
    signal(SIGINT, [](int) { g_interrupted = 1; });
    const bool tty = isatty(STDOUT_FILENO) != 0;
    fmt::print("{:>8}  {:>14}  {:>14}  {:>14}  {:>12}\n", "time", "target", "loaned", "totalram", "oom_freed");
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; (*count == 0 || i < *count) && !g_interrupted; ++i) {
      const auto s = Request(*t, {{"op", "status"}}, "status").get<ctl::PartitionStatus>();
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      fmt::print("{}{:>7.1f}s  {:>14}  {:>14}  {:>14}  {:>12}{}", tty ? "\r" : "", secs,
                 FormatBytes(s.BytesOf(s.loaned_target_pages)), FormatBytes(s.BytesOf(s.loaned_pages)),
                 FormatBytes(s.BytesOf(s.totalram_pages)), FormatBytes(s.BytesOf(s.oom_freed_pages)), tty ? "" : "\n");
      std::fflush(stdout);
      if (*count != 0 && i + 1 == *count) break;
      // Sleep in small steps so Ctrl-C ends the view at once.
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(*interval);
      while (!g_interrupted && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    if (tty) fmt::print("\n");
    return 0;
  };
}

Runner AddRebootImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto timeout = std::make_shared<double>(30.0);
  auto* c = app.add_subcommand("reboot", "Restart a partition (S11): its balloon stops and returns every page, then "
                                         "it comes back up with its RAM, parameters and balloon as at start (uid 0)");
  AddTargetFlags(c, *t, true);
  c->add_option("--timeout", *timeout, "Seconds to wait for it to come back up")->capture_default_str()->check(
      CLI::Range(1.0, 3600.0));
  c->footer("Example:\n  cmm reboot web1");
  return [t, timeout] {
    const json asked = Request(*t, {{"op", "reboot"}}, "cmm reboot " + t->name);
    const uint64_t was = asked.value("boot", uint64_t{1});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(*timeout);
    // Requests wait (or fail) while it restarts: ask until the next boot answers.
    ctl::PartitionStatus s;
    for (;;) {
      auto r = ctl::Call(PathOf(*t), {{"op", "status"}});
      if (r && r->value("ok", false) && (s = r->get<ctl::PartitionStatus>()).boot > was) break;
      if (std::chrono::steady_clock::now() > deadline) {
        throw UserError(fmt::format("cmm reboot {}: restarted, but not back up within {} s; see its log", t->name,
                                    *timeout));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const int64_t returned = std::max<int64_t>(0, s.restart_returned_pages);
    fmt::print("partition {}: restarted: {} loaned pages ({}) returned; up again with {} of guest RAM, {} mode, "
               "boot {}\n",
               t->name, returned, FormatBytes(s.BytesOf(returned)), FormatBytes(s.ram_bytes),
               s.simulate ? "simulate" : "hypervisor", s.boot);
    return 0;
  };
}

Runner AddListImpl(CLI::App& app) {
  auto as_json = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("list", "List running partitions, and the VMs in the pool");
  c->add_flag("--json", *as_json, "Print JSON");
  c->footer("Example:\n  cmm list");
  return [as_json] {
    json out = json::array();
    for (const auto& name : RunningNames()) {
      auto reply = ctl::Call(ctl::SocketPathFor(name), {{"op", "status"}});
      json row = {{"name", name}};
      if (reply && (*reply)["ok"].get<bool>()) {
        row = *reply;
        row.erase("ok");
      } else {
        row["error"] = "not responding";
      }
      out.push_back(row);
    }
    const std::vector<hv::MemberStatus> vms = PoolVms();
    if (*as_json) {
      for (const auto& vm : vms) out.push_back(vm);
      fmt::print("{}\n", out.dump(2));
      return 0;
    }
    if (out.empty() && vms.empty()) {
      fmt::print("{}\n", RunningList());
      return 0;
    }
    fmt::print("{:<16} {:>8} {:<9} {:>10} {:>10} {:>10}\n", "NAME", "PID", "MODE", "RAM", "LOANED", "TARGET");
    for (const auto& r : out) {
      if (r.contains("error")) {
        fmt::print("{:<16} {:>8} {}\n", r["name"].get<std::string>(), "-", "(not responding; stale socket?)");
        continue;
      }
      const auto s = r.get<ctl::PartitionStatus>();
      fmt::print("{:<16} {:>8} {:<9} {:>10} {:>10} {:>10}\n", s.name, s.pid, s.simulate ? "simulate" : "hv",
                 FormatBytes(s.ram_bytes), FormatBytes(s.BytesOf(s.loaned_pages)),
                 FormatBytes(s.BytesOf(s.loaned_target_pages)));
    }
    for (const auto& vm : vms) {
      fmt::print("{:<16} {:>8} {:<9} {:>10} {:>10} {:>10}\n", vm.name, vm.pid, vm.kind, FormatBytes(vm.ram_bytes),
                 FormatBytes(vm.loaned_bytes), FormatBytes(vm.target_loaned_bytes));
    }
    return 0;
  };
}

std::string BlockList(const json& blocks) {
  std::vector<uint64_t> list = blocks.get<std::vector<uint64_t>>();
  return fmt::format("{} {}", list.size() == 1 ? "block" : "blocks", fmt::join(list, ", "));
}

std::string Plural(uint64_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); }

Runner AddMemImpl(CLI::App& app) {
  auto t = std::make_shared<Target>();
  auto what = std::make_shared<std::string>();
  auto op = std::make_shared<std::string>();
  auto* c = app.add_subcommand("mem", "Memory hotplug of a partition's guest RAM");
  c->require_subcommand(1);
  auto* add = c->add_subcommand("add", "Hot-add memory blocks (online in Zone Movable)");
  AddTargetFlags(add, *t, /*name_required=*/true);
  add->add_option("size", *what, "How much: a multiple of the block size, e.g. 128M")->required();
  add->footer("Example (partition started with --mem 1G --max-mem 2G):\n  cmm mem add web1 256M");
  add->final_callback([op] { *op = "add"; });
  auto* remove = c->add_subcommand("remove", "Hot-remove memory blocks: migrate their pages out, return the memory");
  AddTargetFlags(remove, *t, /*name_required=*/true);
  remove->add_option("block|size", *what, "A block number (e.g. 3) or a size (e.g. 256M: the highest blocks that can go)")
      ->required();
  remove->footer("Examples:\n  cmm mem remove web1 3\n  cmm mem remove web1 256M");
  remove->final_callback([op] { *op = "remove"; });
  return [t, what, op] {
    const bool is_block = !what->empty() && std::all_of(what->begin(), what->end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    const auto bytes = ParseSize(*what);
    if (*op == "add" || !is_block) {
      if (!bytes || *bytes == 0) {
        throw UserError(fmt::format("{}: not a {}; try 128M", *what, *op == "add" ? "size" : "block number or size"),
                        kExitUsage);
      }
    }
    if (*op == "add") {
      const json r = Request(*t, {{"op", "mem_add"}, {"bytes", *bytes}}, "adding " + *what);
      fmt::print("partition {}: added {} ({}); {} online\n", t->name, FormatBytes(*bytes), BlockList(r["blocks"]),
                 Plural(r["blocks_online"].get<uint64_t>(), "block"));
      return 0;
    }
    json req = {{"op", "mem_remove"}};
    if (is_block) {
      req["block"] = std::stoull(*what);
    } else {
      req["bytes"] = *bytes;
    }
    const json r = Request(*t, req, "removing " + (is_block ? "block " + *what : *what));
    fmt::print("partition {}: removed {}: migrated {} and {}, {} returned to the host; {} online\n", t->name,
               BlockList(r["blocks"]), Plural(r["movable_migrated"].get<uint64_t>(), "movable page"),
               Plural(r["balloon_migrated"].get<uint64_t>(), "balloon page"),
               FormatBytes(r["bytes_released"].get<uint64_t>()), Plural(r["blocks_online"].get<uint64_t>(), "block"));
    return 0;
  };
}

}  // namespace

Runner AddMem(CLI::App& app) { return AddMemImpl(app); }
Runner AddGet(CLI::App& app) { return AddGetImpl(app); }
Runner AddSet(CLI::App& app) { return AddSetImpl(app); }
Runner AddParam(CLI::App& app) { return AddParamImpl(app); }
Runner AddStatus(CLI::App& app) { return AddStatusImpl(app); }
Runner AddWatch(CLI::App& app) { return AddWatchImpl(app); }
Runner AddList(CLI::App& app) { return AddListImpl(app); }
Runner AddReboot(CLI::App& app) { return AddRebootImpl(app); }
Runner AddLparcfg(CLI::App& app) { return AddLparcfgImpl(app); }
Runner AddMount(CLI::App& app) { return AddMountImpl(app); }

}  // namespace cmm::cli
