#include "demo/runner.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ctl/client.h"

namespace cmm::demo {

using Clock = std::chrono::steady_clock;

Run::Run(const Scenario& s, std::string exe, bool balloon, double duration, const volatile sig_atomic_t& stop)
    : s_(s), exe_(std::move(exe)), balloon_(balloon), duration_(duration), stop_(stop) {}

Run::~Run() {
  StopAll();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void Run::Nap(int ms) const {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

bool Run::WaitFor(const std::string& path) const {
  for (int i = 0; i < 500 && !stop_; ++i) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::filesystem::exists(path);
}

tl::expected<Summary, std::string> Run::Go(bool& ok) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/cmm-demo-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return tl::unexpected(fmt::format("cannot make a temporary directory {}", tmpl));
  }
  dir_ = tmpl;
  if (auto hv = Child::Spawn({exe_, "hv", "--pool", std::to_string(s_.pool_bytes), "--socket", dir_ + "/hv.hcall",
                              "--control", dir_ + "/hv.ctl", "--period-ms", "500"},
                             dir_ + "/hv.log")) {
    hv_ = std::make_unique<Child>(std::move(*hv));
  }
  if (!hv_ || !WaitFor(dir_ + "/hv.ctl")) return tl::unexpected(fmt::format("the hypervisor did not start:\n{}", Log("hv")));
  for (const auto& p : s_.partitions) {
    if (!p.phases_json.empty()) std::ofstream(dir_ + "/" + p.name + ".json") << p.phases_json;
    std::vector<std::string> argv = {exe_, "guest", "--name", p.name, "--mem", std::to_string(p.ram_bytes),
                                     "--hv", dir_ + "/hv.hcall", "--socket", dir_ + "/" + p.name + ".sock",
                                     "--param", fmt::format("min_mem_mb={}", std::max<uint64_t>(16, p.ram_bytes >> 24))};
    if (!balloon_) argv.insert(argv.end(), {"--param", "disable=1"});
    for (const auto& w : p.workloads) {
      argv.insert(argv.end(), {"--workload", w.rfind("phases:", 0) == 0 ? "phases:" + dir_ + "/" + w.substr(7) : w});
    }
    auto c = Child::Spawn(argv, dir_ + "/" + p.name + ".log");
    if (!c) return tl::unexpected(std::string("cannot start a partition"));
    guests_.push_back(std::make_unique<Child>(std::move(*c)));
  }
  for (const auto& p : s_.partitions) {
    if (!WaitFor(dir_ + "/" + p.name + ".sock")) {
      return tl::unexpected(fmt::format("partition {} did not start:\n{}", p.name, Log(p.name)));
    }
  }

  const bool tty = isatty(STDOUT_FILENO) == 1;
  const char* mode = balloon_ ? "" : "(balloon off) ";
  SummaryBuilder summary;
  const auto start = Clock::now();
  ok = true;
  for (;;) {
    Nap(1000);
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    if (const auto sample = Take(t)) {
      summary.Add(*sample);
      if (tty) {
        fmt::print("\x1b[H\x1b[2J{}{}\n", mode, FormatFrame(*sample, duration_));
      } else {
        fmt::print("{}{}\n", mode, FormatLine(*sample));
      }
      std::fflush(stdout);
    }
    if (const std::string dead = Dead(); !dead.empty()) {
      fmt::print(stderr, "cmm demo: {} exited early:\n{}\n", dead, Log(dead));
      ok = false;
      break;
    }
    if (stop_ || t >= duration_) break;
  }
  // Integrity as each partition counted it, then an orderly stop.
  uint64_t errors = 0;
  for (const auto& p : s_.partitions) {
    const auto r = ctl::Call(dir_ + "/" + p.name + ".sock", {{"op", "status"}});
    if (r && r->value("ok", false)) errors += (*r)["integrity_errors"].get<uint64_t>();
  }
  if (!StopAll()) ok = false;
  if (errors != 0) ok = false;
  return summary.Finish(errors);
}

std::string Run::Log(const std::string& who) const {
  std::ifstream f(dir_ + "/" + who + ".log");
  std::string line, tail;
  std::vector<std::string> lines;
  while (std::getline(f, line)) lines.push_back(line);
  for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) tail += "  " + lines[i] + "\n";
  return tail;
}

std::string Run::Dead() {
  if (hv_ && !hv_->Running()) return "hv";
  for (size_t i = 0; i < guests_.size(); ++i) {
    if (!guests_[i]->Running()) return s_.partitions[i].name;
  }
  return "";
}

std::optional<Sample> Run::Take(double t) {
  const auto r = ctl::Call(dir_ + "/hv.ctl", {{"op", "status"}});
  if (!r || !r->value("ok", false)) return std::nullopt;
  Sample s;
  s.t_s = t;
  s.pool_bytes = (*r)["pool_bytes"];
  for (size_t i = 0; i < s_.partitions.size(); ++i) {
    PartitionSample p;
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
bool Run::StopAll() {
  bool clean = true;
  for (auto& g : guests_) clean &= g->Stop(std::chrono::seconds(30)) == 0;
  guests_.clear();
  if (hv_) clean &= hv_->Stop(std::chrono::seconds(10)) == 0;
  hv_.reset();
  return clean;
}

}  // namespace cmm::demo
