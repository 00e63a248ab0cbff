// A VM member against a fake QEMU monitor that lies (the issue's words):
// wrong types in every field the adapter reads, invalid UTF-8, numbers
// past 64 bits, deep nesting, a flood of events, a peer that stops
// mid-message. A bad reply makes that VM unresponsive with the reason; a
// stream that cannot be followed makes it leave with the reason; none of it
// throws or stops anything but that VM.
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fake_qmp.h"
#include "members/qemu/vm_adapter.h"
#include "members/qemu/vm_member.h"
#include "pool/pool.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;
using namespace cmm::hv::testing;
using json = nlohmann::json;

constexpr uint64_t kRam = uint64_t{256} << 20;

std::string Reply(const json& req, const std::string& ret) {
  return "{\"return\": " + ret + ", \"id\": " + req["id"].dump() + "}\r\n";
}
std::vector<QmpStep> Attach(std::vector<QmpStep> then = {}) { return HonestAttach(kRam, std::move(then)); }

class VmLiar : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cmm-liar-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.name = "liar";
    options_.qmp_path = dir_ + "/qmp.sock";
    options_.period = 100ms;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }
  Result<std::shared_ptr<VmMember>> AttachTo() {
    return VmMember::Attach(options_, [this](VmMember&) { ++lost_calls_; });
  }
  template <class F>
  bool Eventually(F f, std::chrono::milliseconds limit = 10s) {
    for (auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < limit;) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }
  std::string dir_;
  VmOptions options_;
  std::atomic<int> lost_calls_{0};
};

// A QEMU that lies the moment its handshake is done is lost by its
// follower before the adapter adds it to the pool: it must not be added
// then (no one would follow it; it stayed, "starting" and counted as
// responsive). Lost after joining, it leaves. Which comes first is the
// threads' order, so it is tried many times.
TEST_F(VmLiar, AVmLostAsItAttachesNeverStaysInThePool) {
  PoolOptions o;
  o.pool_bytes = Bytes(int64_t{1} << 30);
  Pool pool(o);
  VmAdapter vms(pool, 100ms);
  int refused = 0;
  for (int i = 0; i < 40; ++i) {
    FakeQmp qemu(options_.qmp_path, Attach({Send("{\"a\":" + std::string(10000, '[') + "\n")}));
    const auto vm = vms.Attach(options_, {});
    if (!vm) {
      ++refused;
      EXPECT_NE(vm.error().message.find("was lost as it attached: QMP sent a message nested over"),
                std::string::npos)
          << vm.error().message;
    }
    ASSERT_TRUE(Eventually([&] { return pool.Snapshot().empty(); }, 3s)) << "attempt " << i;
  }
  RecordProperty("refused_as_lost_while_attaching", refused);
}

TEST_F(VmLiar, WrongTypesAtAttachAreRefusedAsACannotBeDriven) {
  const std::vector<std::vector<QmpStep>> liars = {
      {Send(Greeting()), Return("qmp_capabilities"), Lie("query-balloon", "[1, 2]"),
       Return("query-memory-size-summary", {{"base-memory", kRam}})},
      {Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", kRam}}),
       Lie("query-memory-size-summary", R"({"base-memory": "lots"})")},
      {Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", kRam}}),
       Lie("query-memory-size-summary", R"({"base-memory": 99999999999999999999999})")},
      {Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", kRam * 2}}),
       Return("query-memory-size-summary", {{"base-memory", kRam}})},
      {Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", kRam}}),
       Return("query-memory-size-summary", {{"base-memory", kRam}}), Lie("qom-list", R"([{"name": 1, "type": 42}])")},
  };
  for (size_t i = 0; i < liars.size(); ++i) {
    FakeQmp qemu(options_.qmp_path, liars[i]);
    const auto vm = AttachTo();
    ASSERT_FALSE(vm.has_value()) << i;
    EXPECT_EQ(vm.error().code, ErrorCode::kInvalid) << i << ": " << vm.error();
  }
}

TEST_F(VmLiar, BytesThatAreNotUtf8BeforeTheGreetingAreRefusedWithAPrintableReason) {
  FakeQmp qemu(options_.qmp_path, {Send("\xff\xfe\xfd{\"QMP\": \xc3\x28}\r\n")});
  const auto vm = AttachTo();
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(vm.error().message.find("\\xff\\xfe\\xfd"), std::string::npos) << vm.error();
  EXPECT_NO_THROW((void)json(vm.error().message).dump());  // fit for a control reply
}

TEST_F(VmLiar, ABadReplyMakesTheVmUnresponsiveWithTheReasonAndItStays) {
  FakeQmp qemu(options_.qmp_path, Attach({Lie("query-balloon", R"({"actual": "lots"})"),
                                          Lie("qom-get", R"({"last-update": 5, "stats": {"stat-free-memory": [1]}})")}));
  auto vm = AttachTo();
  ASSERT_TRUE(vm.has_value()) << vm.error();
  EXPECT_EQ(qemu.failure(), "");
  ASSERT_TRUE(Eventually([&] { return !(*vm)->Observe().responsive; })) << (*vm)->Observe().note;
  const auto s = (*vm)->Observe();
  EXPECT_NE(s.note.find("QEMU sent a bad reply: guest-stats"), std::string::npos) << s.note;
  EXPECT_FALSE((*vm)->lost());
  EXPECT_EQ(lost_calls_.load(), 0);
}

TEST_F(VmLiar, AGuestClaimingMoreFreeMemoryThanItsRamIsClampedToItsRam) {
  FakeQmp qemu(options_.qmp_path,
               Attach({Return("query-balloon", {{"actual", kRam}}),
                       Lie("qom-get", R"({"last-update": 5, "stats": {"stat-free-memory": 1125899906842624,
                                          "stat-total-memory": 268435456, "stat-available-memory": 1125899906842624,
                                          "stat-disk-caches": 18446744073709551615, "stat-swap-in": 8388608,
                                          "stat-major-faults": 300}})")}));
  auto vm = AttachTo();
  ASSERT_TRUE(vm.has_value()) << vm.error();
  ASSERT_TRUE(Eventually([&] { return (*vm)->Observe().stats.taken != MemberClock::time_point{}; }));
  const auto s = (*vm)->Observe();
  EXPECT_EQ(s.stats.free_bytes, FromUnsigned<Bytes>(kRam));
  EXPECT_EQ(s.stats.cache_bytes, Bytes(0));  // "not reported"
  EXPECT_EQ(s.stats.used_bytes, Bytes(0));
  // Counters, not sizes within its RAM: they reach the pool as they are.
  EXPECT_EQ(s.stats.swapped_in, MiB(8));
  EXPECT_EQ(s.stats.major_faults, 300U);
}

// Each of these leaves the stream unusable: the VM leaves the pool with
// the reason, once, and nothing else is touched.
TEST_F(VmLiar, AStreamThatCannotBeFollowedMakesThatVmLeaveWithTheReason) {
  std::string flood;
  for (int i = 0; i < QmpClient::kMaxEventsPerSecond + 10; ++i) flood += R"({"event": "RTC_CHANGE", "data": {}})" "\n";
  const std::vector<std::pair<std::vector<QmpStep>, std::string>> cases = {
      {Attach({Send("{\"event\": \"X\", \"data\": {\"s\": \"\xff\"}}\n")}), "not a JSON object"},
      {Attach({Send("{\"a\":" + std::string(64, '[') + "\n")}), "nested over"},
      {Attach({Send(flood)}), "events in a second"},
      {Attach({Send(R"({"event": "BALLOON_CHANGE", "data": [1]})" "\n")}), "data that is no object"},
      {Attach({Answer("query-balloon", [](const json& req) { return Reply(req, "[1]").substr(0, 12); })}),
       "did not answer in time"},
  };
  for (const auto& [script, why] : cases) {
    lost_calls_ = 0;
    FakeQmp qemu(options_.qmp_path, script);
    auto vm = AttachTo();
    ASSERT_TRUE(vm.has_value()) << vm.error();
    ASSERT_TRUE(Eventually([&] { return (*vm)->lost(); }, 15s)) << why;
    EXPECT_NE((*vm)->lost_reason().find(why), std::string::npos) << (*vm)->lost_reason();
    EXPECT_EQ(lost_calls_.load(), 1);
  }
}

TEST_F(VmLiar, ABalloonChangeOfTheWrongTypeIsIgnoredAndTheVmFollowsOn) {
  FakeQmp qemu(options_.qmp_path,
               Attach({Send(R"({"event": "BALLOON_CHANGE", "data": {"actual": -1}})" "\n"),
                       Send(R"({"event": "BALLOON_CHANGE", "data": {"actual": 1e40}})" "\n"),
                       Return("query-balloon", {{"actual", kRam / 2}}),
                       Lie("qom-get", R"({"last-update": 5, "stats": {"stat-free-memory": 1048576}})")}));
  auto vm = AttachTo();
  ASSERT_TRUE(vm.has_value()) << vm.error();
  EXPECT_EQ(qemu.failure(), "");
  ASSERT_TRUE(Eventually([&] { return (*vm)->Observe().loaned_bytes == FromUnsigned<Bytes>(kRam / 2); }));
  EXPECT_FALSE((*vm)->lost());
}

}  // namespace
}  // namespace cmm::hv
