// The QMP client against a fake QEMU monitor (the issue's words): greeting
// and capabilities, error replies, events interleaved with replies, a reply
// split across reads, garbage, a closed socket. A refused command is that
// command's error only; anything else loses the connection with a clear
// reason, and later calls fail at once.
#include <chrono>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "fake_qmp.h"
#include "members/qemu/qmp_client.h"
#include "members/qemu/vm_member.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;
using namespace cmm::hv::testing;
using json = nlohmann::json;

class QmpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cmm-qmp-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/qmp.sock";
  }
  void TearDown() override {
    const std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  std::string dir_, path_;
};

TEST_F(QmpClientTest, GreetingThenCapabilitiesThenCommandsWithTheirIds) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"), Return("query-balloon", {{"actual", 1 << 30}})});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  EXPECT_EQ((*c)->version(), "7.2.0");
  auto r = (*c)->Execute("query-balloon");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ((*r)["actual"], 1 << 30);
  const auto reqs = qemu.requests();
  ASSERT_EQ(reqs.size(), 2U);
  EXPECT_NE(reqs[0]["id"], reqs[1]["id"]);
  EXPECT_FALSE(reqs[1].contains("arguments"));  // none given, none sent
  EXPECT_EQ(qemu.failure(), "");
}

TEST_F(QmpClientTest, AnErrorReplyFailsThatCommandOnlyAndTheConnectionStays) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"),
                       Answer("balloon",
                              [](const json& req) {
                                return json{{"error", {{"class", "DeviceNotActive"}, {"desc", "No balloon device has been activated"}}},
                                            {"id", req["id"]}}
                                           .dump() +
                                       "\r\n";
                              }),
                       Return("query-status", {{"status", "running"}})});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("balloon", {{"value", 512 << 20}});
  ASSERT_FALSE(r.has_value());
  EXPECT_FALSE(r.error().lost);
  EXPECT_EQ(r.error().klass, "DeviceNotActive");
  EXPECT_EQ(r.error().message, "balloon: No balloon device has been activated");
  EXPECT_FALSE((*c)->lost());
  EXPECT_TRUE((*c)->Execute("query-status").has_value());
  EXPECT_EQ(qemu.requests()[1]["arguments"]["value"], 512 << 20);
}

TEST_F(QmpClientTest, EventsInterleavedWithRepliesAreKeptInOrder) {
  const std::string ev1 = R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BALLOON_CHANGE", "data": {"actual": 900}})" "\r\n";
  const std::string ev2 = R"({"timestamp": {"seconds": 1, "microseconds": 3}, "event": "BALLOON_CHANGE", "data": {"actual": 800}})" "\r\n";
  FakeQmp qemu(path_, {Send(Greeting()), Send(ev1), Return("qmp_capabilities"),
                       Answer("query-balloon", [&](const json& req) {
                         return ev2 + json{{"return", {{"actual", 800}}}, {"id", req["id"]}}.dump() + "\r\n";
                       })});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ((*r)["actual"], 800);
  auto events = (*c)->TakeEvents();
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].name, "BALLOON_CHANGE");
  EXPECT_EQ(events[0].data["actual"], 900);
  EXPECT_EQ(events[1].data["actual"], 800);
  EXPECT_TRUE((*c)->TakeEvents().empty());
}

TEST_F(QmpClientTest, AGreetingSplitAcrossReadsAndAPrettyPrintedReplyAreJoined) {
  FakeQmp qemu(path_, {Send(Greeting().substr(0, 10)), Pause(30ms), Send(Greeting().substr(10)),
                       Return("qmp_capabilities"), Answer("query-balloon", [](const json& req) {
                         return json{{"return", {{"actual", 42}, {"note", "a } in a \" string"}}}, {"id", req["id"]}}
                                    .dump(4) + "\n";
                       })});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ((*r)["actual"], 42);
}

TEST_F(QmpClientTest, AReplyInPiecesWithPausesArrivesWhole) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"), Answer("query-balloon", [](const json& req) {
                         return json{{"return", {{"actual", 42}}}, {"id", req["id"]}}.dump();
                       }),
                       Pause(50ms), Send("\r"), Pause(50ms), Send("\n")});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ((*r)["actual"], 42);
}

TEST_F(QmpClientTest, GarbageLosesTheConnectionWithAClearReason) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"),
                       Answer("query-balloon", [](const json&) { return std::string("Segmentation fault\r\n"); })});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon");
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().lost);
  EXPECT_EQ(r.error().message, "QMP sent something that is not a JSON object: Segmentation fault");
  EXPECT_TRUE((*c)->lost());
  // Every later call fails at once with the same reason.
  auto again = (*c)->Execute("query-status", json::object(), 10s);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message, r.error().message);
  EXPECT_FALSE((*c)->ReadAvailable().has_value());
}

TEST_F(QmpClientTest, AClosedSocketIsLostNotHung) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"), Close()});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon", json::object(), 10s);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().lost);
  EXPECT_EQ(r.error().message, "QEMU closed the QMP connection");
}

TEST_F(QmpClientTest, ASilentPeerTimesOut) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities")});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  auto r = (*c)->Execute("query-balloon", json::object(), 100ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().lost);
  EXPECT_EQ(r.error().message, "QMP did not answer in time");
}

TEST_F(QmpClientTest, NoGreetingOrAWrongOneIsRefusedAtConnect) {
  {
    FakeQmp qemu(path_, {Send("{\"hello\": 1}\r\n")});
    auto c = QmpClient::Connect(path_, 2s);
    ASSERT_FALSE(c.has_value());
    EXPECT_NE(c.error().find("not a QMP greeting"), std::string::npos) << c.error();
  }
  auto none = QmpClient::Connect(dir_ + "/nobody.sock");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().find("cannot connect to QMP at"), std::string::npos) << none.error();
}

TEST_F(QmpClientTest, EventsBetweenCommandsAreReadWithoutACommand) {
  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"), Pause(20ms),
                       Send(R"({"event": "SHUTDOWN", "data": {"guest": true}})" "\n")});
  auto c = QmpClient::Connect(path_);
  ASSERT_TRUE(c.has_value()) << c.error();
  std::deque<QmpEvent> events;
  for (int i = 0; i < 100 && events.empty(); ++i) {
    ASSERT_TRUE((*c)->ReadAvailable(50ms).has_value());
    events = (*c)->TakeEvents();
  }
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].name, "SHUTDOWN");
  EXPECT_EQ(events[0].data["guest"], true);
}

// Why a VM could not be attached is a code the control reply's errno comes
// from: nobody at the socket, or a QEMU that cannot be driven.
TEST_F(QmpClientTest, AttachSaysNoQemuThereApartFromAQemuWithoutABalloon) {
  VmOptions o;
  o.name = "vm1";
  o.qmp_path = path_;
  const auto nobody = VmMember::Attach(o, {});
  ASSERT_FALSE(nobody.has_value());
  EXPECT_EQ(nobody.error().code, ErrorCode::kUnavailable) << nobody.error();

  FakeQmp qemu(path_, {Send(Greeting()), Return("qmp_capabilities"), Answer("query-balloon", [](const json& req) {
                         return json{{"error", {{"class", "DeviceNotActive"},
                                                {"desc", "No balloon device has been activated"}}},
                                     {"id", req["id"]}}
                                    .dump() +
                                "\r\n";
                       })});
  const auto refused = VmMember::Attach(o, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalid) << refused.error();
  EXPECT_NE(refused.error().message.find("has no balloon to drive: query-balloon: No balloon device has been activated"),
            std::string::npos)
      << refused.error();
}

}  // namespace
}  // namespace cmm::hv
