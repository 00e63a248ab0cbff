// Issue 13: contrib/grafana/cmm.json is a dashboard over the hypervisor's
// Prometheus metrics; every metric it queries exists in a running hv's
// /metrics, so no panel stays empty.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>

#include "process.h"

namespace cmm::testing {
namespace {

nlohmann::json Dashboard() {
  std::ifstream f(std::string(CMM_SOURCE_DIR) + "/contrib/grafana/cmm.json");
  return nlohmann::json::parse(f);
}

TEST(Grafana, EveryMetricTheDashboardQueriesExistsInMetrics) {
  TempDir dir;
  setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
  GuestProcess hv(dir.path(), {"--pool", "48M", "--period-ms", "100", "--http", "127.0.0.1:0"}, "hv", "hv");
  std::smatch m;
  std::string out;
  ASSERT_TRUE(WaitUntil([&] {
    out = hv.out();
    return std::regex_search(out, m, std::regex("at http://127.0.0.1:([0-9]+)/ "));
  })) << hv.err();
  httplib::Client http("127.0.0.1", std::stoi(m[1]));
  GuestProcess guest(dir.path(), {"--name", "web1", "--mem", "64M", "--param", "min_mem_mb=0"}, "guest", "web1");
  // Once the partition has polled and loaned, every family has samples.
  std::set<std::string> names;
  ASSERT_TRUE(WaitUntil(
      [&] {
        const auto r = http.Get("/metrics");
        if (!r) return false;
        names.clear();
        std::istringstream lines(r->body);
        for (std::string line; std::getline(lines, line);) {
          if (line.empty() || line[0] == '#') continue;
          names.insert(line.substr(0, line.find_first_of("{ ")));
        }
        return names.contains("cmm_partition_backing_bytes") && names.contains("cmm_hcall_duration_seconds_bucket");
      },
      std::chrono::seconds(20)))
      << guest.err();

  const nlohmann::json d = Dashboard();
  const std::regex metric("cmm_[a-z0-9_]+");
  std::set<std::string> queried;
  std::set<int> ids;
  for (const auto& panel : d["panels"]) {
    ASSERT_TRUE(panel.contains("title") && panel.contains("gridPos") && panel.contains("id")) << panel.dump();
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "panel ids are unique";
    if (panel["type"] == "row") continue;
    EXPECT_EQ(panel["datasource"]["uid"], "${DS_PROMETHEUS}") << panel["title"];
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& t : panel["targets"]) {
      const std::string expr = t["expr"];
      for (auto i = std::sregex_iterator(expr.begin(), expr.end(), metric); i != std::sregex_iterator(); ++i) {
        queried.insert(i->str());
      }
    }
  }
  // The panels: pool use against the pool, backing and loaned per
  // member, hcall rates and latency, OOM events.
  for (const char* must : {"cmm_pool_backing_bytes", "cmm_pool_bytes", "cmm_partition_backing_bytes",
                           "cmm_partition_loaned_bytes", "cmm_hcalls_total", "cmm_hcall_duration_seconds_bucket",
                           "cmm_partition_oom_events_total"}) {
    EXPECT_TRUE(queried.contains(must)) << must << " has no panel";
  }
  for (const auto& q : queried) EXPECT_TRUE(names.contains(q)) << q << " is queried but not in /metrics";
}

}  // namespace
}  // namespace cmm::testing
