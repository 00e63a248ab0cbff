// `--pool auto`: MemAvailable less a reserve, plus what the partitions
// already hold, shrunk under memory pressure; parsing of the two /proc files.
#include <gtest/gtest.h>

#include "host/host_memory.h"
#include "pool/pool.h"

namespace cmm::hv {
namespace {

constexpr Bytes MiB = cmm::MiB(1);

TEST(HostMemory, ParsesMeminfoInKilobytes) {
  const auto h = ParseMeminfo("MemTotal:       24576000 kB\nMemFree:        1000 kB\nMemAvailable:   2048 kB\n");
  ASSERT_TRUE(h.has_value()) << h.error();
  EXPECT_EQ(h->total_bytes, 24576000ULL * 1024);
  EXPECT_EQ(h->available_bytes, 2048ULL * 1024);
  EXPECT_FALSE(ParseMeminfo("MemTotal: 5 kB\n").has_value());            // no MemAvailable (kernel < 3.14)
  EXPECT_FALSE(ParseMeminfo("MemTotal: 5 kB\nMemAvailable: x kB\n").has_value());
}

TEST(HostMemory, ParsesThePressureSomeLine) {
  EXPECT_EQ(ParsePressureAvg10("some avg10=12.50 avg60=1.00 avg300=0.00 total=99\nfull avg10=1.00 ..."), 12.5);
  EXPECT_EQ(ParsePressureAvg10("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"), 0.0);
  EXPECT_FALSE(ParsePressureAvg10("full avg10=1.00").has_value());
  EXPECT_FALSE(ParsePressureAvg10("some avg10=lots avg60=0").has_value());
}

TEST(HostMemory, ThisHostReadsForReal) {
  const auto h = ReadHostMemory();
  ASSERT_TRUE(h.has_value()) << h.error();
  EXPECT_GT(h->total_bytes, 0U);
  EXPECT_LE(h->available_bytes, h->total_bytes);
  EXPECT_EQ(ReadHostMemory("/nonexistent/meminfo").error().code, ErrorCode::kIo);
}

TEST(AutoPool, AvailablePlusPartitionsBackingLessTheReserve) {
  const HostMemory h{AsUnsigned(4096 * MiB), AsUnsigned(1024 * MiB), std::nullopt};
  EXPECT_EQ(AutoPoolBytes(h, Bytes(0), 512 * MiB), 512 * MiB);
  EXPECT_EQ(AutoPoolBytes(h, 256 * MiB, 512 * MiB), 768 * MiB);  // partitions' memory stays in the pool
  EXPECT_EQ(AutoPoolBytes(h, Bytes(0), 2048 * MiB), Bytes(0));
}

TEST(AutoPool, PressureShrinksThePoolAtMostByHalf) {
  HostMemory h{AsUnsigned(4096 * MiB), AsUnsigned(1024 * MiB), 2.0};
  EXPECT_EQ(AutoPoolBytes(h, Bytes(0), Bytes(0)), 1024 * MiB);  // below 5%: no change
  h.pressure_avg10 = 10.0;
  EXPECT_EQ(AutoPoolBytes(h, Bytes(0), Bytes(0)), 1024 * MiB * 8 / 10);
  h.pressure_avg10 = 60.0;
  EXPECT_EQ(AutoPoolBytes(h, Bytes(0), Bytes(0)), 512 * MiB);
}

TEST(AutoPool, ThePoolFollowsItsSizerAtEachRebalance) {
  PoolOptions o;
  o.pool_bytes = 100 * MiB;
  Bytes next = 300 * MiB;
  o.sizer = [&](Bytes backing) {
    EXPECT_EQ(backing, Bytes(0));  // no partitions yet
    return next;
  };
  Pool pool(o);
  EXPECT_EQ(pool.pool_bytes(), 100 * MiB);
  pool.Rebalance();
  EXPECT_EQ(pool.pool_bytes(), 300 * MiB);
  next = 50 * MiB;
  pool.Rebalance();
  EXPECT_EQ(pool.pool_bytes(), 50 * MiB);
}

}  // namespace
}  // namespace cmm::hv
