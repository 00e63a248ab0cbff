// Nothing a guest's QEMU says can stop the hypervisor (the issue's words):
// real `cmm hv` with a real partition beside it, and QEMU monitors that lie
// attached with `cmm vm attach`. Each lie leaves the hypervisor up and the
// partition untouched; a control request during a stalled attach answers
// while the attach still waits.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../members/qemu/fake_qmp.h"
#include "process.h"

namespace cmm::testing {
namespace {

using namespace std::chrono_literals;
using namespace cmm::hv::testing;
using json = nlohmann::json;

constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t kRam = 256 * MiB;

class HvLiar : public ::testing::Test {
 protected:
  void SetUp() override { setenv("CMM_RUN_DIR", dir.path().c_str(), 1); }
  json PoolStatus() {
    const auto r = RunCmm(dir.path(), {"hv", "status", "--json"});
    if (r.code != 0) return json{};
    return json::parse(r.out, nullptr, false);
  }
  // The partition's row, or null.
  json Row(const std::string& name) {
    const json s = PoolStatus();
    if (!s.is_object() || !s.contains("partitions")) return json{};
    for (const auto& p : s["partitions"]) {
      if (p["name"] == name) return p;
    }
    return json{};
  }
  TempDir dir;
};

TEST_F(HvLiar, NoLieFromAQemuStopsTheHypervisorAndThePartitionBesideItIsUntouched) {
  GuestProcess hv(dir.path(), {"--pool", "64M", "--period-ms", "100"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return !PoolStatus().empty(); })) << hv.err();
  GuestProcess g(dir.path(), {"--name", "p1", "--mem", "32M", "--weight", "7"}, "guest", "p1");
  ASSERT_TRUE(WaitUntil([&] { return !Row("p1").is_null(); })) << g.err();

  std::string flood;
  for (int i = 0; i < 1100; ++i) flood += R"({"event": "RTC_CHANGE", "data": {}})" "\n";
  const std::vector<std::pair<std::string, std::vector<QmpStep>>> liars = {
      {"an array where an object was expected",
       {Send(Greeting()), Return("qmp_capabilities"), Lie("query-balloon", "[1, 2, 3]")}},
      {"bytes that are not UTF-8 before the greeting", {Send("\xff\xfe\xfd not QMP \xc3\x28\r\n")}},
      {"a greeting whose version is text", {Send(R"({"QMP": {"version": {"qemu": {"major": "seven"}}}})" "\r\n")}},
      {"a number past 64 bits", {Send(Greeting()), Return("qmp_capabilities"),
                                 Lie("query-balloon", R"({"actual": 340282366920938463463374607431768211456})")}},
      {"guest stats of the wrong types", HonestAttach(kRam, {Lie("query-balloon", R"({"actual": "all"})"),
                                                 Lie("qom-get", R"({"last-update": [], "stats": 5})")})},
      {"a flood of events", HonestAttach(kRam, {Send(flood)})},
      {"deep nesting", HonestAttach(kRam, {Send("{\"a\":" + std::string(10000, '[') + "\n")})},
      {"an error of the wrong types",
       {Send(Greeting()), Return("qmp_capabilities"), Answer("query-balloon", [](const json& req) {
          return "{\"error\": {\"class\": [1], \"desc\": {\"x\": 1}}, \"id\": " + req["id"].dump() + "}\r\n";
        })}},
  };
  int n = 0;
  for (const auto& [lie, script] : liars) {
    const std::string name = "liar" + std::to_string(++n);
    const std::string sock = dir.path() + "/" + name + ".sock";
    FakeQmp qemu(sock, script);
    const auto r = RunCmm(dir.path(), {"vm", "attach", name, "--qmp", sock, "--pid", std::to_string(getpid())});
    // Refused with one clear line, or attached and then dropped or marked:
    // either way the hypervisor answers and the partition is as it was.
    if (r.code != 0) {
      EXPECT_NE(r.err.find(name), std::string::npos) << lie << ": " << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << lie << ": " << r.err;
    }
    ASSERT_TRUE(WaitUntil([&] {
      const json vm = Row(name);
      return vm.is_null() || !vm["responsive"].get<bool>();
    }, 15s)) << lie << ": " << PoolStatus().dump();
    ASSERT_EQ(kill(hv.pid(), 0), 0) << lie << ": the hypervisor stopped\n" << hv.err();
    const json p1 = Row("p1");
    ASSERT_FALSE(p1.is_null()) << lie << ": " << PoolStatus().dump();
    EXPECT_EQ(p1["weight"], 7) << lie;
    EXPECT_TRUE(p1["responsive"].get<bool>()) << lie;
  }
  EXPECT_EQ(hv.err().find("terminate called"), std::string::npos) << hv.err();
  EXPECT_EQ(hv.Stop(), 0) << hv.err();
}

TEST_F(HvLiar, AControlRequestDuringAStalledAttachAnswersWhileTheAttachStillWaits) {
  GuestProcess hv(dir.path(), {"--pool", "64M", "--period-ms", "100"}, "hv", "hv");
  ASSERT_TRUE(WaitUntil([&] { return !PoolStatus().empty(); })) << hv.err();
  // A peer that takes the connection and never greets.
  const std::string sock = dir.path() + "/silent.sock";
  const int silent = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(silent, 4), 0);
  GuestProcess attach(dir.path(), {"attach", "silent", "--qmp", sock, "--pid", std::to_string(getpid())}, "vm",
                      "attach");
  // The attach is in the hypervisor once the peer's connection is queued.
  ASSERT_TRUE(WaitUntil([&] {
    pollfd p{silent, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
  })) << attach.err();
  const auto status = RunCmm(dir.path(), {"hv", "status"});
  EXPECT_EQ(status.code, 0) << status.err;
  // The status came back while the attach still waits on its silent peer.
  EXPECT_EQ(waitpid(attach.pid(), nullptr, WNOHANG), 0) << "the attach ended first: " << attach.err();
  attach.Stop(SIGKILL);
  close(silent);
}

}  // namespace
}  // namespace cmm::testing
