// Google Benchmark micro-benchmarks of the pieces on the hcall path that
// are pure code: the wire codec of a full batch (against a copy of the
// same bytes, the least any decoder must do) and the pool policy for a
// growing number of partitions (it runs once per poll period).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "pool/policy.h"
#include "papr/papr.h"
#include "proto/messages.h"
#include "report.h"

namespace cmm {
namespace {

// A full batch of ascending CMO pages, as the controller sends on inflate.
proto::Message FullBatch() {
  proto::PageInitBatch b;
  b.flags = papr::kPageSetLoaned;
  for (uint64_t i = 0; i < proto::kMaxBatch; ++i) b.addresses.push_back(i * 4096);
  return b;
}

void BM_EncodeBatch(benchmark::State& state) {
  const proto::Message m = FullBatch();
  size_t bytes = 0;
  for (auto _ : state) {
    auto packet = proto::Encode(m);
    bytes = packet.size();
    benchmark::DoNotOptimize(packet.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * proto::kMaxBatch));
}
BENCHMARK(BM_EncodeBatch);

void BM_DecodeBatch(benchmark::State& state) {
  const auto packet = proto::Encode(FullBatch());
  for (auto _ : state) {
    auto m = proto::Decode(packet);
    if (!m) state.SkipWithError(m.error().c_str());
    benchmark::DoNotOptimize(&*m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * packet.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * proto::kMaxBatch));
}
BENCHMARK(BM_DecodeBatch);

// The raw limit for both: the packet's bytes copied into a fresh vector.
void BM_CopyBatchBytes(benchmark::State& state) {
  const auto packet = proto::Encode(FullBatch());
  for (auto _ : state) {
    std::vector<uint8_t> copy(packet.size());
    std::memcpy(copy.data(), packet.data(), packet.size());
    benchmark::DoNotOptimize(copy.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * packet.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * proto::kMaxBatch));
}
BENCHMARK(BM_CopyBatchBytes);

// Partitions of 1 GiB, in different states, over a pool half their size.
void BM_PolicyDecide(benchmark::State& state) {
  const auto n = static_cast<size_t>(state.range(0));
  std::vector<hv::PolicyInput> in(n);
  for (size_t i = 0; i < n; ++i) {
    in[i].ram_bytes = uint64_t{1} << 30;
    in[i].weight = static_cast<uint8_t>(i * 37);
    in[i].free_bytes = (i % 7) * (uint64_t{64} << 20);
    in[i].cache_bytes = (i % 5) * (uint64_t{32} << 20);
    in[i].loaned_bytes = (i % 3) * (uint64_t{128} << 20);
    in[i].new_oom_events = i % 11 == 0 ? 1 : 0;
  }
  hv::PolicyConfig config;
  config.pool_bytes = n * (uint64_t{1} << 29);
  for (auto _ : state) {
    auto decision = hv::Decide(config, in);
    benchmark::DoNotOptimize(decision.targets.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_PolicyDecide)->Arg(4)->Arg(64)->Arg(1024)->Arg(10000);

// Keeps each run's time per iteration, for the figures beside their raw
// limit, while the console shows Google Benchmark's own table.
class Collector : public benchmark::ConsoleReporter {
 public:
  Collector() : ConsoleReporter(isatty(STDOUT_FILENO) != 0 ? OO_Defaults : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) ns[r.benchmark_name()] = r.GetAdjustedRealTime();
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> ns;
};

}  // namespace
}  // namespace cmm

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  cmm::Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::Shutdown();

  const auto& ns = collector.ns;
  const auto copy = ns.find("BM_CopyBatchBytes");
  if (copy == ns.end()) return 0;  // filtered out: nothing to compare with
  std::printf("\nwire codec, one batch of %u CMO pages, against copying its bytes (same run)\n",
              cmm::proto::kMaxBatch);
  std::printf("%-20s %12s %14s %8s\n", "figure", "cmm", "raw limit", "ratio");
  for (const auto& [name, figure] : {std::pair{"BM_EncodeBatch", "encode"}, std::pair{"BM_DecodeBatch", "decode"}}) {
    const auto it = ns.find(name);
    if (it == ns.end()) continue;
    const double ratio = copy->second / it->second;
    std::printf("%-20s %9.2f us %11.2f us %8.2f\n", figure, it->second / 1e3, copy->second / 1e3, ratio);
    cmm::bench::Record({"micro", fmt::format("wire {}, one batch of {} pages", figure, cmm::proto::kMaxBatch), "us",
                        it->second / 1e3, copy->second / 1e3, ratio, "", true});
  }
  return 0;
}
