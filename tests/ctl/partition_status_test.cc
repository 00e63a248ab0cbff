// A partition's status is one typed struct: what the service sends reads
// back field for field, a key an older partition did not send reads as the
// default, and the numbers are the partition's own.
#include <unistd.h>

#include <gtest/gtest.h>

#include "ctl/partition_service.h"
#include "ctl/partition_status.h"

namespace cmm::ctl {
namespace {

std::unique_ptr<guest::Partition> SimulatedPartition() {
  guest::PartitionOptions o;
  o.name = "status1";
  o.ram_bytes = MiB(64);
  o.block_bytes = MiB(16);
  o.params.simulate = true;
  auto p = guest::Partition::Create(o);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message);
  return p ? std::move(*p) : nullptr;
}

TEST(PartitionStatus, WhatTheServiceSendsReadsBackFieldForField) {
  auto p = SimulatedPartition();
  ASSERT_NE(p, nullptr);
  const nlohmann::json reply = HandlePartitionRequest(*p, {{"op", "status"}}, Peer{0}, BootRecord{3, 42});
  ASSERT_TRUE(reply.value("ok", false));
  const auto s = reply.get<PartitionStatus>();
  EXPECT_EQ(s.name, "status1");
  EXPECT_EQ(s.pid, getpid());
  EXPECT_TRUE(s.simulate);
  EXPECT_EQ(s.page_size, 4096u);
  EXPECT_EQ(s.ram_bytes, 64ULL << 20);
  EXPECT_EQ(s.totalram_pages, p->controller().Snapshot().totalram.value());
  EXPECT_EQ(s.blocks_total, 4u);
  ASSERT_EQ(s.blocks.size(), 4u);
  EXPECT_EQ(s.blocks[0].state, "online");
  EXPECT_EQ(s.blocks[0].zone, "Normal");
  EXPECT_EQ(s.boot, 3u);
  EXPECT_EQ(s.restart_returned_pages, 42);
  // Written back, the same document (less the reply's "ok").
  nlohmann::json again = s;
  nlohmann::json sent = reply;
  sent.erase("ok");
  EXPECT_EQ(again, sent);
}

TEST(PartitionStatus, AKeyMissingFromAReplyReadsAsTheDefault) {
  const auto s = nlohmann::json{{"name", "old"}, {"page_size", 65536}, {"loaned_pages", 3}}.get<PartitionStatus>();
  EXPECT_EQ(s.name, "old");
  EXPECT_EQ(s.BytesOf(s.loaned_pages), 3u * 65536u);
  EXPECT_EQ(s.boot, 1u);
  EXPECT_EQ(s.restart_returned_pages, -1);
  EXPECT_TRUE(s.workloads.empty());
  EXPECT_EQ(s.BytesOf(-5), 0u);  // a negative count is none
}

}  // namespace
}  // namespace cmm::ctl
