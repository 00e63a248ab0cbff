// A real hypervisor endpoint and real partitions in one process, on a
// SOCK_SEQPACKET socket in a temporary directory: registration with the
// memfd, loan requests from the pool policy, loaned pages released for
// real, malformed messages refused, a partition's departure noticed.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "guest/partition.h"
#include "hv/server.h"
#include "proto/channel.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

class HvServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cmm-hv-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/hv.sock";
    PoolOptions o;
    o.pool_bytes = 32 << 20;
    pool_ = std::make_unique<Pool>(o);
    auto s = HvServer::Start(path_, *pool_, 20ms);
    ASSERT_TRUE(s.has_value()) << s.error();
    server_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    pool_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  std::unique_ptr<guest::Partition> Guest(const std::string& name, uint64_t mem) {
    guest::PartitionOptions o;
    o.name = name;
    o.ram_bytes = mem;
    o.hv_socket = path_;
    o.params.min_mem_mb = 0;
    o.params.disable = 1;  // the test drives the balloon
    auto p = guest::Partition::Create(o);
    EXPECT_TRUE(p.has_value()) << p.error();
    return p ? std::move(*p) : nullptr;
  }

  std::string dir_, path_;
  std::unique_ptr<Pool> pool_;
  std::unique_ptr<HvServer> server_;
};

TEST_F(HvServerTest, PolicyAsksForTheExcessAndLoanedPagesAreReleasedForReal) {
  auto g = Guest("web1", 64 << 20);
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->Start(), 0);
  std::memset(g->ram().data(), 0x5A, g->ram().size());  // all of guest RAM backed
  ASSERT_GE(g->ram().BackingBytes(), uint64_t{64} << 20);
  EXPECT_EQ(g->controller().cmo_page_size(), 4096U);
  ASSERT_EQ(pool_->Snapshot().size(), 1U);

  // 64 MiB of RAM on a 32 MiB pool: the policy asks for 32 MiB once it has stats.
  Controller& c = g->controller();
  ASSERT_TRUE(WaitFor([&] {
    c.ComputeTarget();
    return c.loaned_target() >= Pages(8192);
  }));
  EXPECT_LE(c.loaned_target(), Pages(8192 + 256));
  ASSERT_EQ(c.Inflate(c.loaned_target() - c.loaned()), Pages(0));
  const auto view = pool_->Snapshot().at(0);
  EXPECT_EQ(view.loaned_bytes, static_cast<uint64_t>(c.loaned().value()) * 4096);
  EXPECT_LE(view.backing_bytes, (uint64_t{64} << 20) - view.loaned_bytes);  // released for real
  EXPECT_LE(g->ram().BackingBytes(), uint64_t{32} << 20);
  EXPECT_EQ(view.counts.page_init, static_cast<uint64_t>(c.loaned().value()));

  // Within the pool now: the request is 0 and stays so.
  papr::MppData mpp;
  ASSERT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
  EXPECT_EQ(mpp.pool_size, 32 << 20);
  EXPECT_EQ(mpp.entitled_mem, 64 << 20);
  EXPECT_LE(mpp.backing_mem, 32 << 20);

  // Deflate: set active copies nothing; pages come back zeroed when touched.
  g->Stop();
  EXPECT_EQ(pool_->Snapshot().at(0).loaned_bytes, 0U);
  EXPECT_EQ(g->memory().integrity_errors(), 0U);
}

TEST_F(HvServerTest, DuplicateNamesAreRefusedWithAReason) {
  auto a = Guest("db1", 16 << 20);
  ASSERT_NE(a, nullptr);
  guest::PartitionOptions o;
  o.name = "db1";
  o.ram_bytes = 16 << 20;
  o.hv_socket = path_;
  const auto b = guest::Partition::Create(o);
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().find("a partition named db1 is already registered"), std::string::npos) << b.error();
}

TEST_F(HvServerTest, AMalformedMessageGetsAnErrorAndTheConnectionIsDropped) {
  auto fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(fd.has_value()) << fd.error();
  const uint8_t junk[] = {0x43, 0x4D, 1, 99, 0, 0, 0, 0};
  ASSERT_EQ(send(*fd, junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  auto reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  const auto* e = std::get_if<proto::Error>(&reply->message);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("unknown message type 99"), std::string::npos) << e->message;
  EXPECT_FALSE(proto::Receive(*fd, 2s).has_value());  // closed
  close(*fd);
  // A request before registering is refused too, and the server still serves.
  fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(proto::Send(*fd, proto::GetMpp{}).has_value());
  reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(std::get<proto::Error>(reply->message).message.find("first message must be a registration"),
            std::string::npos);
  close(*fd);
  EXPECT_NE(Guest("after", 16 << 20), nullptr);
}

TEST_F(HvServerTest, APartitionThatGoesAwayLeavesThePool) {
  auto g = Guest("gone", 16 << 20);
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(pool_->Snapshot().size(), 1U);
  g.reset();
  EXPECT_TRUE(WaitFor([&] { return pool_->Snapshot().empty(); }));
}

TEST_F(HvServerTest, LostHypervisorFailsCallsWithHardwareAndKeepsTheTarget) {
  auto g = Guest("orphan", 64 << 20);
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->Start(), 0);
  Controller& c = g->controller();
  ASSERT_TRUE(WaitFor([&] {
    c.ComputeTarget();
    return c.loaned_target() > Pages(0);
  }));
  const Pages target = c.loaned_target();
  server_.reset();  // the hypervisor goes away
  papr::MppData mpp;
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kHardware);
  c.ComputeTarget();  // S2: a failed H_GET_MPP keeps the previous target
  EXPECT_EQ(c.loaned_target(), target);
  EXPECT_FALSE(g->hv()->connected());
}

}  // namespace
}  // namespace cmm::hv
