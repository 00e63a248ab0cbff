// A real hypervisor endpoint and real partitions in one process, on a
// SOCK_SEQPACKET socket in a temporary directory: registration with the
// memfd, loan requests from the pool policy, loaned pages released for
// real, malformed messages refused, a partition's departure noticed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "guest/partition.h"
#include "pool/rebalancer.h"
#include "members/partition/server.h"
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
    StartHypervisor();
  }
  // A fresh pool of 32 MiB and its server at path_.
  void StartHypervisor() {
    PoolOptions o;
    o.pool_bytes = MiB(32);
    rebalancer_.reset();  // it drives the old pool
    pool_ = std::make_unique<Pool>(o);
    auto s = HvServer::Start(path_, *pool_);
    ASSERT_TRUE(s.has_value()) << s.error();
    server_ = std::move(*s);
    rebalancer_ = std::make_unique<Rebalancer>(*pool_, 20ms);
  }
  void TearDown() override {
    rebalancer_.reset();
    server_.reset();
    pool_.reset();
    std::string cmd = "rm -rf " + dir_;
    (void)std::system(cmd.c_str());
  }
  std::unique_ptr<guest::Partition> Guest(const std::string& name, Bytes mem) {
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
  std::unique_ptr<Rebalancer> rebalancer_;
};

TEST_F(HvServerTest, PolicyAsksForTheExcessAndLoanedPagesAreReleasedForReal) {
  auto g = Guest("web1", MiB(64));
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
  EXPECT_EQ(view.loaned_bytes, Bytes(c.loaned().value() * 4096));
  EXPECT_LE(view.backing_bytes, MiB(64) - view.loaned_bytes);  // released for real
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
  EXPECT_EQ(pool_->Snapshot().at(0).loaned_bytes, Bytes(0));
  EXPECT_EQ(g->memory().integrity_errors(), 0U);
}

// The "a partition's reclaim counts": what its allocations had to
// reclaim first reaches the pool with its next H_GET_MPP.
TEST_F(HvServerTest, WhatAPartitionsAllocationsReclaimedReachesThePoolWithItsStats) {
  auto g = Guest("reader", MiB(8));
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->Start(), 0);
  // Read twice its RAM through its page cache: past the first RAM's worth,
  // each miss reclaims an older page first.
  const uint64_t ps = g->memory().Geometry().size();
  const uint64_t pages = 2 * MiB(8).value() / ps;
  for (uint64_t i = 0; i < pages; ++i) ASSERT_TRUE(g->cache().Read(i).has_value()) << i;
  ASSERT_GT(g->memory().direct_reclaimed(), 0U);
  papr::MppData mpp;
  ASSERT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
  const auto view = pool_->Snapshot().at(0);
  EXPECT_EQ(view.stats.reclaimed, Bytes(static_cast<int64_t>(g->memory().direct_reclaimed() * ps)));
  EXPECT_GT(view.stats.reclaimed, MiB(4));
  g->Stop();
}

TEST_F(HvServerTest, DuplicateNamesAreRefusedWithAReason) {
  auto a = Guest("db1", MiB(16));
  ASSERT_NE(a, nullptr);
  guest::PartitionOptions o;
  o.name = "db1";
  o.ram_bytes = MiB(16);
  o.hv_socket = path_;
  const auto b = guest::Partition::Create(o);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kExists);
  EXPECT_NE(b.error().message.find("a partition named db1 is already registered"), std::string::npos) << b.error();
}

TEST_F(HvServerTest, AMalformedMessageGetsAnErrorAndTheConnectionIsDropped) {
  auto fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(fd.has_value()) << fd.error();
  const uint8_t junk[] = {0x43, 0x4D, proto::kVersion, 99, 0, 0, 0, 0};
  ASSERT_EQ(send(*fd, junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  auto reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  const auto* e = std::get_if<proto::Error>(&reply->message);
  ASSERT_NE(e, nullptr);
  EXPECT_NE(e->message.find("unknown message type 99"), std::string::npos) << e->message;
  EXPECT_EQ(proto::Receive(*fd, 2s).error().code, ErrorCode::kUnavailable);  // closed
  close(*fd);
  // A request before registering is refused too, and the server still serves.
  fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(proto::Send(*fd, proto::GetMpp{}).has_value());
  reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value());
  EXPECT_NE(std::get<proto::Error>(reply->message).message.find("first message must be a registration"),
            std::string::npos);
  close(*fd);
  EXPECT_NE(Guest("after", MiB(16)), nullptr);
}

TEST_F(HvServerTest, APartitionThatStopsReadingItsRepliesDoesNotStallTheOthers) {
  // Registers by hand, then sends calls without ever reading a reply until
  // its socket takes no more: the hypervisor's replies to it back up.
  const uint64_t ram = 16 << 20;
  const int memfd = memfd_create("stuck", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(memfd, 0);
  ASSERT_EQ(ftruncate(memfd, static_cast<off_t>(ram)), 0);
  ASSERT_EQ(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
  auto fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(fd.has_value()) << fd.error();
  proto::Register r;
  r.name = "stuck";
  r.page_size = 4096;
  r.ram_bytes = ram;
  ASSERT_TRUE(proto::Send(*fd, r, memfd).has_value());
  close(memfd);
  ASSERT_TRUE(proto::Receive(*fd, 2s).has_value());
  const auto packet = proto::Encode(proto::GetMpp{});
  int sent = 0;
  while (sent < 1000000 && send(*fd, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {
    ++sent;
    if (sent % 64 == 0) std::this_thread::sleep_for(1ms);  // let the hypervisor fill its side
  }
  ASSERT_EQ(errno, EAGAIN) << std::strerror(errno);

  // Another partition registers and is answered all the same.
  auto g = Guest("free", MiB(16));
  ASSERT_NE(g, nullptr);
  papr::MppData mpp;
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
  EXPECT_EQ(mpp.entitled_mem, 16 << 20);
  EXPECT_EQ(pool_->Snapshot().size(), 2U);

  close(*fd);  // the stuck one goes; so does its place in the pool
  EXPECT_TRUE(WaitFor([&] { return pool_->Snapshot().size() == 1; }));
}

TEST_F(HvServerTest, AConnectionThatDoesNotRegisterInTimeIsDropped) {
  server_.reset();
  auto s = HvServer::Start(path_, *pool_, {}, {.registration_timeout = 100ms});
  ASSERT_TRUE(s.has_value()) << s.error();
  server_ = std::move(*s);
  auto fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(fd.has_value()) << fd.error();
  auto reply = proto::Receive(*fd, 2s);  // says nothing: the deadline passes
  ASSERT_TRUE(reply.has_value()) << reply.error();
  const auto* e = std::get_if<proto::Error>(&reply->message);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, static_cast<uint32_t>(ETIMEDOUT));
  EXPECT_NE(e->message.find("no registration within 100 ms"), std::string::npos) << e->message;
  EXPECT_EQ(proto::Receive(*fd, 2s).error().code, ErrorCode::kUnavailable);  // closed
  close(*fd);
  // A registered partition may stay quiet for longer than the deadline.
  auto g = Guest("quiet", MiB(16));
  ASSERT_NE(g, nullptr);
  std::this_thread::sleep_for(300ms);
  papr::MppData mpp;
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
}

TEST_F(HvServerTest, ConnectionsBeyondTheLimitAreRefusedWithEagain) {
  server_.reset();
  auto s = HvServer::Start(path_, *pool_, {}, {.max_connections = 2});
  ASSERT_TRUE(s.has_value()) << s.error();
  server_ = std::move(*s);
  auto a = Guest("a", MiB(16));
  auto b = Guest("b", MiB(16));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto fd = proto::ConnectSeqpacket(path_);
  ASSERT_TRUE(fd.has_value()) << fd.error();
  auto reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  const auto* e = std::get_if<proto::Error>(&reply->message);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->code, static_cast<uint32_t>(EAGAIN));
  EXPECT_NE(e->message.find("too many connections (at most 2)"), std::string::npos) << e->message;
  close(*fd);
  b.reset();  // a place comes free once its session is reaped
  EXPECT_TRUE(WaitFor([&] { return pool_->Snapshot().size() == 1; }));
  guest::PartitionOptions o;
  o.name = "c";
  o.ram_bytes = MiB(16);
  o.hv_socket = path_;
  o.params.disable = 1;
  EXPECT_TRUE(WaitFor([&] { return guest::Partition::Create(o).has_value(); }));
}

TEST_F(HvServerTest, OutOfDescriptorsTheServerWaitsAndServesOnceItCan) {
#ifdef CMM_UBSAN
  // UBSan checks a virtual call's object through a pipe it opens: with no
  // descriptor left it reports every one. `make tsan` runs this test.
  GTEST_SKIP() << "needs free descriptors under UBSan";
#endif
  // The log is swapped while no thread of ours logs: before the server
  // starts and after it and the partition are gone.
  server_.reset();
  std::ostringstream log;
  struct LogTo {
    LogTo(std::ostringstream& log, std::unique_ptr<HvServer>& server) : server(server) {
      spdlog::set_default_logger(
          std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
    }
    ~LogTo() {
      server.reset();
      spdlog::set_default_logger(saved);
    }
    std::shared_ptr<spdlog::logger> saved = spdlog::default_logger();
    std::unique_ptr<HvServer>& server;
  };
  std::optional<LogTo> logging(std::in_place, log, server_);
  StartHypervisor();

  // This process (client and server both) may hold one descriptor more:
  // the client's socket takes it, so the server cannot accept.
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  int open_now = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) (void)e, ++open_now;
  rlimit tight = before;
  tight.rlim_cur = static_cast<rlim_t>(open_now + 8);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> filler;
  for (int d; (d = dup(STDERR_FILENO)) >= 0;) filler.push_back(d);
  ASSERT_EQ(errno, EMFILE);
  close(filler.back());
  filler.pop_back();
  auto fd = proto::ConnectSeqpacket(path_);
  const bool connected = fd.has_value();
  std::this_thread::sleep_for(300ms);  // the server meets EMFILE meanwhile
  for (const int d : filler) close(d);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_TRUE(connected) << fd.error();

  // With descriptors back, the waiting connection is served...
  ASSERT_TRUE(proto::Send(*fd, proto::GetMpp{}).has_value());
  auto reply = proto::Receive(*fd, 2s);
  ASSERT_TRUE(reply.has_value()) << reply.error();
  EXPECT_NE(std::get<proto::Error>(reply->message).message.find("first message must be a registration"),
            std::string::npos);
  close(*fd);
  // ...and so is a new partition.
  auto g = Guest("after-emfile", MiB(16));
  ASSERT_NE(g, nullptr);
  papr::MppData mpp;
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
  g.reset();
  logging.reset();
  EXPECT_NE(log.str().find("cannot accept a partition: Too many open files"), std::string::npos) << log.str();
}

TEST_F(HvServerTest, APartitionThatGoesAwayLeavesThePool) {
  auto g = Guest("gone", MiB(16));
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(pool_->Snapshot().size(), 1U);
  g.reset();
  EXPECT_TRUE(WaitFor([&] { return pool_->Snapshot().empty(); }));
}

TEST_F(HvServerTest, LostHypervisorFailsCallsWithHardwareAndKeepsTheTarget) {
  auto g = Guest("orphan", MiB(64));
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

TEST_F(HvServerTest, BatchedCallsArriveAsBatchesAndNoBatchAsSingleCalls) {
  auto g = Guest("batched", MiB(16));
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->hv()->MaxBatch(), proto::kMaxBatch);
  ASSERT_EQ(g->controller().Inflate(Pages(1000)), Pages(0));
  HcallCounts c = pool_->Snapshot()[0].counts;
  EXPECT_EQ(c.batches, 1U);
  EXPECT_EQ(c.page_init, 1000U);
  EXPECT_LE(c.releases, 2U);  // ascending pages of one run: one or two punch calls
  g.reset();
  ASSERT_TRUE(WaitFor([&] { return pool_->Snapshot().empty(); }));

  guest::PartitionOptions o;
  o.name = "single";
  o.ram_bytes = MiB(16);
  o.hv_socket = path_;
  o.params.disable = 1;
  o.batch = false;  // --no-batch
  auto s = guest::Partition::Create(o);
  ASSERT_TRUE(s.has_value()) << s.error();
  EXPECT_EQ((*s)->hv()->MaxBatch(), 0U);
  ASSERT_EQ((*s)->controller().Inflate(Pages(100)), Pages(0));
  c = pool_->Snapshot()[0].counts;
  EXPECT_EQ(c.batches, 0U);
  EXPECT_EQ(c.page_init, 100U);
  EXPECT_EQ(c.releases, 100U);
}

// Two batches in flight on the real socket, and a call made between them:
// each answer goes to its own request, in order, and the pages are punched.
TEST_F(HvServerTest, TwoBatchesInFlightAndACallBetweenThemEachGetTheirOwnAnswer) {
  auto g = Guest("inflight", MiB(16));
  ASSERT_NE(g, nullptr);
  std::memset(g->ram().data(), 0x5A, g->ram().size());
  const uint64_t backed = g->ram().BackingBytes();
  std::vector<uint64_t> first, second;
  for (uint64_t i = 0; i < 256; ++i) first.push_back(i * 4096);
  for (uint64_t i = 256; i < 300; ++i) second.push_back(i * 4096);
  Hypervisor& hv = *g->hv();
  hv.SubmitBatch(papr::kPageSetLoaned, first);
  hv.SubmitBatch(papr::kPageSetLoaned, second);
  papr::MppData mpp;
  EXPECT_EQ(hv.GetMpp(mpp), papr::kSuccess);  // answered, though two batch answers came first
  EXPECT_EQ(mpp.entitled_mem, int64_t{16} << 20);
  const Hypervisor::BatchResult a = hv.CompleteBatch();
  const Hypervisor::BatchResult b = hv.CompleteBatch();
  EXPECT_EQ(a.rc, papr::kSuccess);
  EXPECT_EQ(a.done, 256u);
  EXPECT_EQ(b.rc, papr::kSuccess);
  EXPECT_EQ(b.done, 44u);
  const HcallCounts c = pool_->Snapshot()[0].counts;
  EXPECT_EQ(c.batches, 2U);
  EXPECT_EQ(c.page_init, 300U);
  EXPECT_LE(g->ram().BackingBytes(), backed - 300 * 4096);
  // Nothing submitted: a completion says so instead of waiting.
  EXPECT_EQ(hv.CompleteBatch().rc, papr::kHardware);
}

TEST_F(HvServerTest, ARestartedHypervisorIsToldEveryLoanedPageOnce) {
  auto g = Guest("survivor", MiB(16));
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->controller().Inflate(Pages(500)), Pages(0));
  server_.reset();
  StartHypervisor();

  papr::MppData mpp;
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kHardware);  // the old connection is found dead
  EXPECT_EQ(g->hv()->GetMpp(mpp), papr::kHardware);  // too soon: backing off
  EXPECT_TRUE(pool_->Snapshot().empty());
  ASSERT_TRUE(WaitFor([&] { return g->hv()->GetMpp(mpp) == papr::kSuccess; }));
  EXPECT_EQ(g->hv()->reconnects(), 1U);
  const auto v = pool_->Snapshot();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].loaned_bytes, Bytes(500 * 4096));
  EXPECT_EQ(v[0].counts.page_init, 500U);
  // A deflate after the restart gives them back at the new hypervisor.
  EXPECT_EQ(g->controller().Deflate(Pages(500)), Pages(0));
  EXPECT_EQ(pool_->Snapshot()[0].loaned_bytes, Bytes(0));
}

TEST_F(HvServerTest, OperatorSettingsChangeWhatThePolicyAsks) {
  auto g = Guest("tuned", MiB(64));
  ASSERT_NE(g, nullptr);
  g->controller().ComputeTarget();  // reports stats
  ASSERT_TRUE(WaitFor([&] { return pool_->Snapshot()[0].target_loaned_bytes >= MiB(32); }));
  SettingsChange change;
  change.weight = 200;
  change.min_bytes = MiB(60);
  auto set = pool_->Configure("tuned", change);
  ASSERT_TRUE(set.has_value()) << set.error().message;
  EXPECT_EQ(set->weight, 200);
  // min 60 MiB of 64: it is never asked for more than 4 MiB.
  ASSERT_TRUE(WaitFor([&] { return pool_->Snapshot()[0].target_loaned_bytes <= MiB(4); }));
  papr::MppData mpp;
  ASSERT_EQ(g->hv()->GetMpp(mpp), papr::kSuccess);
  EXPECT_EQ(mpp.mem_weight, 200);

  EXPECT_EQ(pool_->Configure("nobody", change).error().code, ErrorCode::kNotFound);
  SettingsChange too_big;
  too_big.min_bytes = MiB(65);
  EXPECT_EQ(pool_->Configure("tuned", too_big).error().code, ErrorCode::kInvalid);
  SettingsChange crossing;
  crossing.min_bytes = MiB(40);
  crossing.max_bytes = MiB(30);
  const auto crossed = pool_->Configure("tuned", crossing);
  ASSERT_FALSE(crossed.has_value());
  EXPECT_NE(crossed.error().message.find("above max"), std::string::npos);
  EXPECT_EQ(pool_->Snapshot()[0].settings.min_bytes, MiB(60));  // a refused change changes nothing
}

}  // namespace
}  // namespace cmm::hv
