// Traces (the issue's words: a JSON trace format with generators for the
// built-in shapes, replayable): generated fleets are the same for a seed,
// a trace survives writing and reading, a bad one is refused with the
// member and field named; and the workload shapes do what they say.
#include <gtest/gtest.h>

#include "sim/fleet.h"
#include "sim/shape.h"
#include "sim/trace.h"

namespace cmm::sim {
namespace {

constexpr uint64_t MiB = 1 << 20;

TEST(Trace, AGeneratedFleetIsTheSameForASeedAndSurvivesItsJson) {
  const Trace a = GenerateFleet(50, 7);
  const Trace b = GenerateFleet(50, 7);
  ASSERT_EQ(a.members.size(), 50U);
  EXPECT_EQ(TraceJson(a), TraceJson(b));
  EXPECT_NE(TraceJson(a), TraceJson(GenerateFleet(50, 8)));
  const auto back = ParseTrace(TraceJson(a));
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(TraceJson(*back), TraceJson(a));
  int kinds[6] = {};
  for (const auto& m : a.members) ++kinds[static_cast<int>(m.shape.kind)];
  EXPECT_GT(kinds[static_cast<int>(ShapeKind::kWeb)], 5);
}

TEST(Trace, RecordedSamplesAreReplayedStepByStep) {
  const auto t = ParseTrace(R"({"version":1,"period_s":1,"pool_mb":512,
    "members":[{"name":"db","ram_mb":256,"samples":{"t_s":[0,10],"used_mb":[50,120],"cache_mb":[5,6]}}]})");
  ASSERT_TRUE(t.has_value()) << t.error();
  EXPECT_EQ(t->pool_bytes, 512 * MiB);
  Workload w(t->members[0].shape, t->members[0].ram_bytes, 1, &t->members[0].samples);
  EXPECT_EQ(w.At(3).used, 50 * MiB);
  EXPECT_EQ(w.At(10).used, 120 * MiB);
  EXPECT_EQ(w.At(99).cache, 6 * MiB);
}

TEST(Trace, ABadTraceIsRefusedWithTheMemberAndFieldNamed) {
  EXPECT_EQ(ParseTrace("{").error().substr(0, 8), "not JSON");
  EXPECT_EQ(ParseTrace(R"({"members":[]})").error(), "trace: \"members\" is a list of at least one member");
  EXPECT_EQ(ParseTrace(R"({"members":[{"name":"a","ram_mb":64}]})").error(),
            "member a: needs a \"shape\" or \"samples\"");
  EXPECT_EQ(ParseTrace(R"({"members":[{"name":"a","ram_mb":64,"shape":{"kind":"tidal"}}]})").error(),
            "member a shape: \"kind\" is one of steady, web, batch, idle, leak");
  EXPECT_EQ(ParseTrace(R"({"members":[{"name":"a","ram_mb":"lots","shape":{}}]})").error(),
            "member a: \"ram_mb\" has the wrong type");
  EXPECT_EQ(ParseTrace(R"({"version":2,"members":[]})").error(), "trace version 2 is not known (this cmm reads 1)");
}

TEST(Shape, BurstsBatchJobsAndLeaksComeAndGoAsTheirShapeSays) {
  Shape web{ShapeKind::kWeb, 0.2F, 0.7F, 0.0F, 100, 20, 1};
  Workload w(web, 1000 * MiB, 3);
  int bursting = 0;
  for (uint32_t t = 0; t < 10000; ++t) bursting += w.At(t).used > 500 * MiB ? 1 : 0;
  EXPECT_GT(bursting, 500);   // about 20 s in every 120
  EXPECT_LT(bursting, 3500);
  Shape leak{ShapeKind::kLeak, 0.1F, 0.9F, 0.0F, 1000, 0, 1};
  Workload l(leak, 1000 * MiB, 3);
  uint64_t top = 0;
  for (uint32_t t = 0; t < 1000; ++t) top = std::max(top, l.At(t).used);
  EXPECT_GT(top, 850 * MiB);
  Shape steady{ShapeKind::kSteady, 0.3F, 0.0F, 0.4F, 600, 0, 100};
  Workload s(steady, 1000 * MiB, 3);
  EXPECT_LT(s.At(10).cache, s.At(100).cache);  // caches keep growing
  EXPECT_EQ(s.At(500).cache, s.At(100).cache);
}

TEST(Sim, AMemberThatLeavesKeepsItsCountsInTheReport) {
  // One leaking member on half its RAM: its targets move and it gives back
  // on OOM; it leaves half-way through the run.
  const auto t = ParseTrace(R"({"pool_mb":512,"members":[{"name":"leaky","ram_mb":1024,"leave_s":300,
    "shape":{"kind":"leak","base":0.1,"peak":0.9,"every_s":200,"cache_fill_s":60}}]})");
  ASSERT_TRUE(t.has_value()) << t.error();
  SimOptions o;
  o.seconds = 600;
  const SimReport r = RunSim(*t, o);
  EXPECT_GT(r.oom_events, 1U);
  EXPECT_EQ(r.oom_members, 1U);  // its first event and the ones that came back
  EXPECT_GT(r.churn_max, 0U);
  EXPECT_GT(r.churn_per_member_hour, 0.0);
}

}  // namespace
}  // namespace cmm::sim
