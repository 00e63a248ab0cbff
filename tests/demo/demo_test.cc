// The demo's scenario and summary (issue: "cmm demo shows overcommit
// working"): sizes scale with the pool, the roles are the four the issue
// names, and the summary adds up what the samples say.
#include <gtest/gtest.h>

#include "demo/scenario.h"
#include "demo/summary.h"

namespace cmm::demo {
namespace {

constexpr uint64_t MiB = 1 << 20;

TEST(DemoScenario, DefaultsAreFourPartitionsOfThreeQuartersOfTheGibibytePool) {
  const Scenario s = BuildScenario({});
  EXPECT_EQ(s.pool_bytes, 1024 * MiB);
  ASSERT_EQ(s.partitions.size(), 4U);
  const char* names[] = {"web1", "db1", "batch1", "idle1"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s.partitions[i].name, names[i]);
    EXPECT_EQ(s.partitions[i].ram_bytes, 768 * MiB);
    EXPECT_FALSE(s.partitions[i].workloads.empty());
  }
  EXPECT_EQ(s.partitions[0].role, "bursty web server");
  // Caches keep growing toward most of the RAM: 85% of 768 MiB over half of the 60 s run.
  EXPECT_EQ(s.partitions[1].workloads, (std::vector<std::string>{"hog:153M", "cache:652M:21M"}));
  EXPECT_NE(s.partitions[0].phases_json.find("\"repeat_after\":30"), std::string::npos) << s.partitions[0].phases_json;
  EXPECT_EQ(s.partitions[0].workloads[0], "phases:web1.json");
}

TEST(DemoScenario, MorePartitionsRepeatTheRolesAndShareThePool) {
  ScenarioOptions o;
  o.partitions = 8;
  o.overcommit = 4;
  const Scenario s = BuildScenario(o);
  ASSERT_EQ(s.partitions.size(), 8U);
  EXPECT_EQ(s.partitions[4].name, "web2");
  EXPECT_EQ(s.partitions[7].name, "idle2");
  EXPECT_EQ(s.partitions[0].ram_bytes, 512 * MiB);
  EXPECT_EQ(s.partitions[1].workloads[0], "hog:76M");  // half of four partitions' share
}

uint64_t SumOfPeaks(const Scenario& s) {
  uint64_t sum = 0;
  for (const auto& p : s.partitions) sum += PeakBytes(p);
  return sum;
}

// Issue 25: "cmm demo --vms on its defaults stays within its pool ...;
// cmm demo --vms --overload shows the other case honestly".
TEST(DemoScenario, VmDemoPeaksFitThePoolWithRoomAndOverloadGoesBeyondIt) {
  ScenarioOptions o;
  o.pool_bytes = 768 * MiB;
  o.partitions = 3;
  o.overcommit = 2;
  o.vms = 3;
  const Scenario fits = BuildScenario(o);
  ASSERT_EQ(fits.partitions.size(), 3U);
  EXPECT_TRUE(fits.partitions[0].vm);
  // Each VM's kernel is counted: web's burst, its cache and the kernel.
  EXPECT_EQ(PeakBytes(fits.partitions[0]), (115 + 38 + 30) * MiB);
  const uint64_t fit = SumOfPeaks(fits);
  EXPECT_LE(fit, 768 * MiB * 75 / 100) << fit / MiB;
  o.overload = true;
  const uint64_t over = SumOfPeaks(BuildScenario(o));
  EXPECT_GT(over, 768 * MiB * 110 / 100) << over / MiB;
  // Partitions too: 77% of the pool at their peaks, well above it overloaded.
  ScenarioOptions parts;
  EXPECT_LE(SumOfPeaks(BuildScenario(parts)), 1024 * MiB);
  parts.overload = true;
  EXPECT_GT(SumOfPeaks(BuildScenario(parts)), 1024 * MiB * 110 / 100);
}

TEST(DemoScenario, RefusesWhatCannotRun) {
  ScenarioOptions o;
  EXPECT_EQ(CheckScenario(o), "");
  o.partitions = 0;
  EXPECT_NE(CheckScenario(o), "");
  o = {};
  o.overcommit = 0.5;
  EXPECT_NE(CheckScenario(o), "");
  o = {};
  o.duration_s = 1;
  EXPECT_NE(CheckScenario(o), "");
  o = {};
  o.pool_bytes = 64 * MiB;
  EXPECT_NE(CheckScenario(o).find("give a larger --pool"), std::string::npos);
}

Sample At(double t, uint64_t backing_a, uint64_t backing_b, uint64_t loaned) {
  Sample s;
  s.t_s = t;
  s.pool_bytes = 100 * MiB;
  s.partitions = {{.name = "a", .ram_bytes = 150 * MiB, .loaned_bytes = loaned, .backing_bytes = backing_a,
                   .oom_events = 1, .pages_loaned = 10},
                  {.name = "b", .ram_bytes = 150 * MiB, .backing_bytes = backing_b, .pages_returned = 4}};
  return s;
}

TEST(DemoSummary, PeakMeanTimeOverThePoolAndCounters) {
  SummaryBuilder b;
  Sample first = At(1, 40 * MiB, 40 * MiB, 5 * MiB);  // 80
  first.partitions[0].oom_events = 0;
  b.Add(first);
  b.Add(At(2, 60 * MiB, 50 * MiB, 30 * MiB));  // 110: over for the second since the last sample, just after an OOM
  b.Add(At(3.5, 50 * MiB, 40 * MiB, 20 * MiB));  // 90
  b.Add(At(5, 60 * MiB, 50 * MiB, 20 * MiB));  // 110 again, 3 s after the OOM event: the policy's own
  const Summary s = b.Finish(0);
  EXPECT_EQ(s.ram_bytes, 300 * MiB);
  EXPECT_DOUBLE_EQ(s.overcommit, 3.0);
  EXPECT_EQ(s.peak_backing, 110 * MiB);
  EXPECT_EQ(s.mean_backing, 390 * MiB / 4);
  EXPECT_DOUBLE_EQ(s.seconds_over_after_oom, 1.0);
  EXPECT_DOUBLE_EQ(s.seconds_over_pool, 1.5);
  EXPECT_EQ(s.peak_loaned, 30 * MiB);
  EXPECT_EQ(s.final_loaned, 20 * MiB);
  EXPECT_EQ(s.oom_events, 1U);
  EXPECT_EQ(s.pages_loaned, 10U);
  EXPECT_EQ(s.pages_returned, 4U);
  const std::string text = FormatSummary(s, nullptr);
  EXPECT_NE(text.find("300 MiB / 100 MiB = 3.00x"), std::string::npos) << text;
  EXPECT_NE(text.find("time over the pool                     2 s of 5 s"), std::string::npos) << text;
  EXPECT_NE(text.find("over the pool after OOM give-back      1 s"), std::string::npos) << text;
  // 300 MiB of RAM backed by 390/4 MiB on average.
  EXPECT_NE(text.find("host memory saved, mean (RAM - use)    202.5 MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("integrity errors                       0"), std::string::npos) << text;
  // Who met the OOM events, the most first.
  EXPECT_NE(text.find("OOM events                             1 (a 1)\n"), std::string::npos) << text;
  SummaryBuilder two;
  Sample more = At(1, 40 * MiB, 40 * MiB, 5 * MiB);
  more.partitions[1].oom_events = 7;
  more.partitions.push_back({.name = "c", .ram_bytes = 150 * MiB});
  two.Add(more);
  EXPECT_NE(FormatSummary(two.Finish(0), nullptr).find("OOM events                             8 (b 7, a 1)\n"),
            std::string::npos);
}

TEST(DemoSummary, ComparisonSaysWhatTheBalloonSaved) {
  SummaryBuilder on, off;
  on.Add(At(1, 40 * MiB, 40 * MiB, 60 * MiB));
  off.Add(At(1, 100 * MiB, 90 * MiB, 0));
  const Summary a = on.Finish(0), b = off.Finish(0);
  const std::string text = FormatSummary(a, &b);
  EXPECT_NE(text.find("balloon off"), std::string::npos);
  EXPECT_NE(text.find("host memory saved at peak              110 MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("the balloon saved 110 MiB of host memory on average: without it the partitions came to back "
                      "190 MiB (63% of their RAM, 190% of the pool); with it, 80 MiB at most (80% of the pool)"),
            std::string::npos)
      << text;
}

// Issue 25: "demand beyond the pool, said in words" in the demo summary:
// the seconds the members used more than the pool, and who at the peak.
TEST(DemoSummary, SaysHowLongWhatMembersUsedWasAboveThePoolAndByWhomAtThePeak) {
  SummaryBuilder b;
  Sample s = At(1, 40 * MiB, 40 * MiB, 0);
  s.partitions[0].used_bytes = 40 * MiB;
  s.partitions[1].used_bytes = 30 * MiB;
  b.Add(s);  // 70 MiB used: within
  s.t_s = 3;
  s.partitions[0].used_bytes = 80 * MiB;
  s.partitions[1].used_bytes = 45 * MiB;
  b.Add(s);  // 125 MiB: 2 s above
  s.t_s = 4;
  s.partitions[0].used_bytes = 60 * MiB;
  b.Add(s);  // 105 MiB: 1 s more
  const Summary sum = b.Finish(0);
  EXPECT_DOUBLE_EQ(sum.seconds_demand_over_pool, 3.0);
  EXPECT_EQ(sum.peak_demand, 125 * MiB);
  EXPECT_EQ(sum.peak_demand_said, "members use 125 MiB, the pool is 100 MiB: 25 MiB short; a 80 MiB, b 45 MiB");
  const std::string text = FormatSummary(sum, nullptr);
  EXPECT_NE(text.find("members' use above the pool            3 s (peak 125 MiB, 125% of the pool)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("demand beyond the pool at its peak: members use 125 MiB"), std::string::npos) << text;
}

TEST(DemoView, FrameAndLine) {
  const Sample s = At(2, 60 * MiB, 50 * MiB, 30 * MiB);
  const std::string frame = FormatFrame(s, 60);
  EXPECT_NE(frame.find("cmm demo  2/60 s   pool 100 MiB: in use 110 MiB (110%)"), std::string::npos) << frame;
  EXPECT_NE(frame.find("loaned 30 MiB   host memory saved 190 MiB"), std::string::npos) << frame;
  EXPECT_NE(frame.find("PARTITION"), std::string::npos);
  EXPECT_NE(frame.find("#!]"), std::string::npos) << frame;  // over the pool
  EXPECT_EQ(FormatLine(s).rfind("[  2.0s] pool 100 MiB in use 110 MiB (110%), loaned 30 MiB, saved 190 MiB: a used", 0), 0U)
      << FormatLine(s);
}

}  // namespace
}  // namespace cmm::demo
