// libFuzzer target for the VM member driven by what its QEMU says: a
// program of replies and events (honest ones with fuzzed numbers, wrong
// types, garbage, replies out of order) played by an in-process monitor on
// a socket pair, while the member attaches, follows and is given targets.
// It must attach or refuse with a reason, then follow until the monitor
// closes and leave once; what it reports stays within the VM's RAM.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <fuzzer/FuzzedDataProvider.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "members/qemu/vm_member.h"

#include "check.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A small process whose memory the member measures (the fuzzer's own
// /proc/self/smaps would cost more than the rest of a run).
pid_t Target() {
  static const pid_t pid = [] {
    const pid_t parent = getpid();
    const pid_t child = fork();
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      for (;;) pause();
    }
    return child;
  }();
  return pid;
}

uint64_t Number(FuzzedDataProvider& in, uint64_t ram) {
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return in.ConsumeIntegralInRange<uint64_t>(0, ram);
    case 1: return ram;
    case 2: return UINT64_MAX;
    case 3: return in.ConsumeIntegral<uint64_t>();
    default: return in.ConsumeIntegralInRange<uint64_t>(0, 1 << 20);
  }
}

// One reply's value: the shapes the adapter asks for, with fuzzed numbers,
// or something else altogether.
json Value(FuzzedDataProvider& in, uint64_t ram) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return {{"actual", Number(in, ram)}};
    case 1: return {{"base-memory", Number(in, ram)}, {"plugged-memory", Number(in, ram)}};
    case 2: return json::array({{{"name", in.ConsumeRandomLengthString(16)}, {"type", "child<virtio-balloon-pci>"}}});
    case 3:
      return {{"last-update", in.ConsumeIntegral<int64_t>()},
              {"stats",
               {{"stat-total-memory", Number(in, ram)},
                {"stat-free-memory", Number(in, ram)},
                {"stat-available-memory", Number(in, ram)},
                {"stat-disk-caches", Number(in, ram)},
                {"stat-major-faults", Number(in, ram)}}}};
    case 4: return json::object();
    case 5: return json::parse(in.ConsumeRandomLengthString(64), nullptr, false);
    case 6: return in.ConsumeRandomLengthString(16);
    default: return -static_cast<int64_t>(in.ConsumeIntegral<uint32_t>());
  }
}

std::string Program(FuzzedDataProvider& in, uint64_t ram) {
  std::string out;
  if (in.ConsumeBool()) {
    out += R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})" "\r\n";
  } else {
    out += in.ConsumeRandomLengthString(64) + "\r\n";
  }
  uint64_t id = 1;
  // The attach handshake, answered honestly unless the program says not.
  const bool honest = in.ConsumeBool();
  if (honest) {
    const json steps[] = {json::object(), {{"actual", ram}}, {{"base-memory", ram}},
                          json::array({{{"name", "b0"}, {"type", "child<virtio-balloon-pci>"}}}), json::object()};
    for (const json& r : steps) out += json{{"return", r}, {"id", id++}}.dump() + "\r\n";
  }
  while (in.remaining_bytes() > 0 && out.size() < 64 * 1024) {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
      case 1: out += json{{"return", Value(in, ram)}, {"id", id++}}.dump(-1, ' ', false, json::error_handler_t::replace); break;
      case 2:
        out += json{{"error", {{"class", "GenericError"}, {"desc", in.ConsumeRandomLengthString(32)}}}, {"id", id++}}
                   .dump(-1, ' ', false, json::error_handler_t::replace);
        break;
      case 3: out += json{{"event", "BALLOON_CHANGE"}, {"data", {{"actual", Number(in, ram)}}}}.dump(); break;
      case 4: out += json{{"return", Value(in, ram)}, {"id", in.ConsumeIntegral<uint8_t>()}}.dump(-1, ' ', false, json::error_handler_t::replace); break;
      default: out += in.ConsumeRandomLengthString(64); break;
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietProcess();
  (void)Target();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint64_t ram = in.ConsumeIntegralInRange<uint64_t>(1, 64) << 20;
  const uint64_t target = in.ConsumeIntegralInRange<uint64_t>(0, ram);
  const std::string program = Program(in, ram);
  int fds[2];
  Check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  const int bigger = 1 << 20;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &bigger, sizeof bigger);
  // The monitor says all it has to say, then closes its side.
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  (void)!write(fds[1], program.data(), program.size());
  shutdown(fds[1], SHUT_WR);

  auto client = cmm::hv::QmpClient::Open(fds[0], "fuzz", 200ms);
  if (!client) {
    Check(!client.error().empty());
    close(fds[1]);
    return 0;
  }
  cmm::hv::VmOptions o;
  o.name = "fuzz";
  o.pid = Target();
  o.period = 1ms;
  o.attach_timeout = 200ms;
  std::atomic<int> lost{0};
  auto vm = cmm::hv::VmMember::Attach(o, std::move(*client), [&lost](cmm::hv::VmMember&) { ++lost; });
  if (!vm) {
    Check(!vm.error().message.empty());
    close(fds[1]);
    return 0;
  }
  (*vm)->Assign({cmm::FromUnsigned<cmm::Bytes>(target), cmm::Bytes(0), 0});
  // EOF is near: the follower must notice it and leave, once.
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!(*vm)->lost()) {
    Check(std::chrono::steady_clock::now() < until);
    const auto s = (*vm)->Observe();
    Check(s.loaned_bytes <= cmm::FromUnsigned<cmm::Bytes>(ram));
    Check(s.stats.free_bytes <= cmm::FromUnsigned<cmm::Bytes>(ram));
    Check(s.stats.used_bytes <= cmm::FromUnsigned<cmm::Bytes>(ram));
    std::this_thread::sleep_for(200us);
  }
  vm->reset();
  Check(lost.load() == 1);
  close(fds[1]);
  return 0;
}
