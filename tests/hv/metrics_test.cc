// The Prometheus text the hypervisor serves: names, labels, escaping, and
// a histogram whose buckets are cumulative.
#include <gtest/gtest.h>

#include "hv/metrics.h"

namespace cmm::hv {
namespace {

using namespace std::chrono_literals;

TEST(HcallStats, CountsByCallAndCodeAndBucketsTheLatency) {
  HcallStats s;
  s.Record(Hcall::kPageInit, papr::kSuccess, 3us);     // first bucket (<= 5 us)
  s.Record(Hcall::kPageInit, papr::kSuccess, 30us);    // <= 50 us
  s.Record(Hcall::kPageInit, papr::kHardware, 2s);     // +Inf
  const auto r = s.Read();
  EXPECT_EQ((r.calls.at({Hcall::kPageInit, papr::kSuccess})), 2U);
  EXPECT_EQ((r.calls.at({Hcall::kPageInit, papr::kHardware})), 1U);
  const LatencyHistogram& h = r.latency.at(Hcall::kPageInit);
  EXPECT_EQ(h.counts[0], 1U);
  EXPECT_EQ(h.counts[3], 1U);
  EXPECT_EQ(h.counts.back(), 1U);
  EXPECT_EQ(h.total, 3U);
  EXPECT_NEAR(h.sum_seconds, 2.000033, 1e-9);
}

TEST(Metrics, PoolMembersWithTheirKindAndHcallsInPrometheusText) {
  MemberView a;
  a.name = "web\"1";
  a.ram_bytes = MiB(1);
  a.backing_bytes = Bytes(4096);
  a.loaned_bytes = Bytes(8192);
  a.settings.weight = 7;
  a.stats.oom_events = 2;
  a.stats.reclaimed = MiB(3);
  a.counts.pages_loaned = 300;
  a.counts.pages_returned = 100;
  HcallStats s;
  s.Record(Hcall::kGetMpp, papr::kSuccess, 20us);
  s.Record(Hcall::kPageInitBatch, papr::kHardware, 20us);
  s.Record(Hcall::kGetMpp, papr::kSuccess, 200us);
  MemberView vm;
  vm.name = "vm1";
  vm.kind = MemberKind::kVm;
  vm.backing_bytes = Bytes(8192);
  vm.responsive = false;
  vm.own_bytes = Bytes(12345);
  const std::string t = PrometheusText(MiB(64), {MiB(64), MiB(80), MiB(16), MiB(8)}, {a, vm}, s.Read());
  for (const char* line : {
           "# TYPE cmm_pool_bytes gauge\ncmm_pool_bytes 67108864\n",
           "cmm_pool_backing_bytes 12288\n",
           "# TYPE cmm_pool_shortfall_bytes gauge\ncmm_pool_shortfall_bytes 16777216\n",
           "# TYPE cmm_pool_giveback_reserve_bytes gauge\ncmm_pool_giveback_reserve_bytes 8388608\n",
           "cmm_partitions{kind=\"partition\"} 1\n",
           "cmm_partitions{kind=\"vm\"} 1\n",
           "cmm_partition_backing_bytes{partition=\"vm1\",kind=\"vm\"} 8192\n",
           "cmm_partition_responsive{partition=\"vm1\",kind=\"vm\"} 0\n",
           "cmm_partition_responsive{partition=\"web\\\"1\",kind=\"partition\"} 1\n",
           "cmm_partition_own_bytes{partition=\"vm1\",kind=\"vm\"} 12345\n",
           "cmm_partition_backing_bytes{partition=\"web\\\"1\",kind=\"partition\"} 4096\n",
           "cmm_partition_loaned_bytes{partition=\"web\\\"1\",kind=\"partition\"} 8192\n",
           "cmm_partition_weight{partition=\"web\\\"1\",kind=\"partition\"} 7\n",
           "# TYPE cmm_partition_oom_events_total counter\n",
           "# TYPE cmm_partition_reclaimed_bytes_total counter\n",
           "cmm_partition_reclaimed_bytes_total{partition=\"web\\\"1\",kind=\"partition\"} 3145728\n",
           "# TYPE cmm_partition_pages_loaned_total counter\n",
           "cmm_partition_pages_loaned_total{partition=\"web\\\"1\",kind=\"partition\"} 300\n",
           "cmm_partition_pages_returned_total{partition=\"web\\\"1\",kind=\"partition\"} 100\n",
           "cmm_hcalls_total{call=\"H_GET_MPP\",rc=\"H_SUCCESS\"} 2\n",
           "cmm_hcalls_total{call=\"H_PAGE_INIT_BATCH\",rc=\"H_HARDWARE\"} 1\n",
           "# TYPE cmm_hcall_duration_seconds histogram\n",
           "cmm_hcall_duration_seconds_bucket{call=\"H_GET_MPP\",le=\"2.5e-05\"} 1\n",
           "cmm_hcall_duration_seconds_bucket{call=\"H_GET_MPP\",le=\"0.00025\"} 2\n",  // cumulative
           "cmm_hcall_duration_seconds_bucket{call=\"H_GET_MPP\",le=\"+Inf\"} 2\n",
           "cmm_hcall_duration_seconds_count{call=\"H_GET_MPP\"} 2\n",
       }) {
    EXPECT_NE(t.find(line), std::string::npos) << line << "\nin:\n" << t;
  }
}

}  // namespace
}  // namespace cmm::hv
