// The partition-hypervisor wire format: every message round-trips, every
// malformed packet is refused with a reason (issue: "every field validated
// on receipt; a malformed message gets an error reply ... never a crash").
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "proto/channel.h"
#include "proto/messages.h"

namespace cmm::proto {
namespace {

std::vector<Message> Samples() {
  papr::MppData d;
  d.entitled_mem = 1 << 30;
  d.mapped_entitled_mem = -1;
  d.group_num = 3;
  d.pool_num = 1;
  d.mem_weight = 128;
  d.unallocated_mem_weight = 7;
  d.unallocated_entitlement = 4096;
  d.pool_size = int64_t{4} << 30;
  d.loan_request = -(int64_t{64} << 20);
  d.backing_mem = 123456789;
  return {
      Register{"web1", 4096, uint64_t{1} << 30, 200, 256 << 20, 0, true},
      Registered{4096, kCapBatch, kMaxBatch},
      GetMpp{Stats{1, 2, 3, 4, 5, 6, 7, 8}},
      Mpp{papr::kSuccess, d},
      PageInit{papr::kPageSetLoaned, 0x12345000},
      PageInitRc{papr::kParameter},
      PageInitBatch{papr::kPageSetActive, {0x1000, 0x2000, 0x3000}},
      PageInitBatchRc{2, papr::kHardware},
      Error{22, "bad things"},
  };
}

TEST(Proto, EveryMessageRoundTrips) {
  for (const Message& m : Samples()) {
    const auto bytes = Encode(m);
    const auto back = Decode(bytes);
    ASSERT_TRUE(back.has_value()) << "type " << m.index() << ": " << back.error();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
}

TEST(Proto, HeaderIsMagicVersionTypeLength) {
  const auto bytes = Encode(PageInitRc{papr::kSuccess});
  ASSERT_EQ(bytes.size(), kHeaderBytes + 8);
  EXPECT_EQ(bytes[0], 0x43);  // 'C'
  EXPECT_EQ(bytes[1], 0x4D);  // 'M'
  EXPECT_EQ(bytes[2], kVersion);
  EXPECT_EQ(bytes[3], 6);  // PageInitRc is the sixth message
  EXPECT_EQ(bytes[4], 8);
}

std::string Why(std::vector<uint8_t> bytes) {
  const auto r = Decode(bytes);
  return r.has_value() ? "accepted" : r.error();
}

TEST(Proto, MalformedPacketsAreRefusedWithAReason) {
  auto good = Encode(PageInit{papr::kPageSetLoaned, 0x1000});
  EXPECT_NE(Why({1, 2, 3}).find("shorter than a header"), std::string::npos);
  auto bad = good;
  bad[0] = 0;
  EXPECT_NE(Why(bad).find("bad magic"), std::string::npos);
  bad = good;
  bad[2] = 9;
  EXPECT_NE(Why(bad).find("protocol version 9"), std::string::npos);
  bad = good;
  bad[3] = 0;
  EXPECT_NE(Why(bad).find("unknown message type 0"), std::string::npos);
  bad[3] = 200;
  EXPECT_NE(Why(bad).find("unknown message type 200"), std::string::npos);
  bad = good;
  bad.pop_back();
  EXPECT_NE(Why(bad).find("payload length 16 but 15 bytes"), std::string::npos);
  bad = good;
  bad[4] = 0xff;
  bad[5] = 0xff;
  bad[6] = 0xff;
  EXPECT_NE(Why(bad).find("over the limit"), std::string::npos);
  // A payload shorter than its type needs, with a matching length field.
  bad = good;
  bad.resize(kHeaderBytes + 4);
  bad[4] = 4;
  EXPECT_NE(Why(bad).find("page_init: truncated"), std::string::npos);
  // Bytes left over after the fields.
  bad = good;
  bad.push_back(0);
  bad[4] = 17;
  EXPECT_NE(Why(bad).find("1 bytes left over"), std::string::npos);
}

TEST(Proto, FieldsAreValidated) {
  EXPECT_NE(Why(Encode(Register{"bad name", 4096, 1 << 20, 0, 0, 0, true})).find("not valid"), std::string::npos);
  // One rule for names everywhere (core/names.h): the wire refuses what the
  // command line refuses, a leading '.' or '-' too.
  for (const char* bad : {".hidden", "-opt", "", "a/b"}) {
    EXPECT_NE(Why(Encode(Register{bad, 4096, 1 << 20, 0, 0, 0, true})).find("not valid"), std::string::npos) << bad;
  }
  EXPECT_NE(Why(Encode(Register{"a", 3000, 1 << 20, 0, 0, 0, true})).find("power of two"), std::string::npos);
  EXPECT_NE(Why(Encode(Register{"a", 4096, 5000, 0, 0, 0, true})).find("whole pages"), std::string::npos);
  EXPECT_NE(Why(Encode(Register{"a", 4096, 1 << 20, 0, 2 << 20, 0, true})).find("must not exceed"), std::string::npos);
  EXPECT_NE(Why(Encode(Registered{3000, 0, 1})).find("not a power of two"), std::string::npos);
  EXPECT_NE(Why(Encode(PageInitBatch{0, {}})).find("0 pages"), std::string::npos);
  EXPECT_NE(Why(Encode(PageInitBatch{0, std::vector<uint64_t>(kMaxBatch + 1)})).find("4097 pages"), std::string::npos);
  auto flag = Encode(Register{"a", 4096, 1 << 20, 0, 0, 0, true});
  flag.back() = 2;
  EXPECT_NE(Why(flag).find("batch flag"), std::string::npos);
}

// A deterministic stand-in for the fuzzer in CI's unit run: mutated and
// random packets are decoded without crashing (ASan/UBSan watch), and what
// decodes re-encodes to the same bytes.
// Each message's fields are described once and both encode and decode
// come from that description: the seed packets of the fuzz corpus (one of
// each message, written before) decode and encode back to the same bytes.
TEST(Proto, EveryCorpusPacketEncodesBackToTheSameBytes) {
  const std::filesystem::path dir = std::filesystem::path(CMM_SOURCE_DIR) / "fuzz/corpus/messages";
  size_t seen = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(f.path(), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto m = Decode(bytes);
    ASSERT_TRUE(m.has_value()) << f.path() << ": " << m.error();
    EXPECT_EQ(Encode(*m), bytes) << f.path();
    ++seen;
  }
  EXPECT_EQ(seen, std::variant_size_v<Message>) << "one seed per message";
}

TEST(Proto, MutatedPacketsNeverCrashTheDecoder) {
  std::mt19937 rng(7);
  const auto samples = Samples();
  int accepted = 0;
  for (int i = 0; i < 50000; ++i) {
    auto bytes = Encode(samples[rng() % samples.size()]);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 3) {
        case 0: bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng()); break;
        case 1: bytes.resize(rng() % (bytes.size() + 1)); break;
        case 2: bytes.push_back(static_cast<uint8_t>(rng())); break;
      }
      if (bytes.empty()) break;
    }
    const auto m = Decode(bytes);
    if (m) {
      ++accepted;
      EXPECT_EQ(Encode(*m), bytes);
    }
  }
  EXPECT_GT(accepted, 0);
}


// The channel's errors carry a code its callers decide on (the server
// tells an unregistered connection's deadline from a peer that left by it),
// never by the text.
TEST(Channel, TimedOutClosedAndMalformedAreCodesNotText) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  using std::chrono::milliseconds;
  EXPECT_EQ(Receive(sv[0], milliseconds(20)).error().code, ErrorCode::kTimedOut);
  ASSERT_TRUE(SetReceiveTimeout(sv[0], milliseconds(20)).has_value());
  EXPECT_EQ(Receive(sv[0], kSocketTimeout).error().code, ErrorCode::kTimedOut);  // SO_RCVTIMEO
  const uint8_t junk[] = {1, 2, 3};
  ASSERT_EQ(send(sv[1], junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  EXPECT_EQ(Receive(sv[0], milliseconds(1000)).error().code, ErrorCode::kProtocol);
  ASSERT_TRUE(Send(sv[1], GetMpp{}).has_value());
  const auto got = Receive(sv[0], milliseconds(1000));
  ASSERT_TRUE(got.has_value()) << got.error();
  EXPECT_TRUE(std::holds_alternative<GetMpp>(got->message));
  close(sv[1]);
  EXPECT_EQ(Receive(sv[0], milliseconds(1000)).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(Send(sv[0], GetMpp{}).error().code, ErrorCode::kIo);  // EPIPE, without a SIGPIPE
  close(sv[0]);
}

}  // namespace
}  // namespace cmm::proto
