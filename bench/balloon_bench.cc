// Simulate-mode inflate and deflate of 1 Mi pages through the real
// controller and the real guest allocator, beside the floor measured in the
// same run: pushing and popping the same page numbers in a plain vector.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "guest/partition.h"
#include "report.h"

namespace {

using Timer = std::chrono::steady_clock;
constexpr int64_t kPages = 1 << 20;
constexpr int kRuns = 5;

double Seconds(Timer::duration d) { return std::chrono::duration<double>(d).count(); }

struct Best {
  double inflate = 1e9, deflate = 1e9;
};

}  // namespace

int main() {
  using namespace cmm;
  guest::PartitionOptions o;
  o.name = "bench";
  o.page_size = 4096;
  o.ram_bytes = PageGeometry(o.page_size).ToBytes(Pages(kPages + (kPages / 16)));  // room above min_mem
  o.params.simulate = true;
  o.params.min_mem_mb = 0;
  o.params.disable = 1;  // the benchmark drives the controller itself
  auto made = guest::Partition::Create(o);
  if (!made) {
    std::fprintf(stderr, "bench: %s\n", made.error().message.c_str());
    return 1;
  }
  guest::Partition& p = **made;
  if (p.Start() != 0) return 1;
  Controller& c = p.controller();

  Best cmm, floor;
  uint64_t bookkeeping = 0;
  for (int run = 0; run < kRuns; ++run) {
    auto t0 = Timer::now();
    const Pages left = c.Inflate(Pages(kPages));
    auto t1 = Timer::now();
    if (left != Pages(0)) {
      std::fprintf(stderr, "bench: inflate left %lld pages\n", static_cast<long long>(left.value()));
      return 1;
    }
    bookkeeping = c.balloon().BookkeepingBytes();
    c.Deflate(Pages(kPages));
    auto t2 = Timer::now();
    cmm.inflate = std::min(cmm.inflate, Seconds(t1 - t0));
    cmm.deflate = std::min(cmm.deflate, Seconds(t2 - t1));

    // Floor: the same page numbers through a vector, no allocator, no balloon.
    std::vector<uint64_t> v;
    t0 = Timer::now();
    for (int64_t i = 0; i < kPages; ++i) v.push_back(static_cast<uint64_t>(i));
    t1 = Timer::now();
    uint64_t sum = 0;
    while (!v.empty()) {
      sum += v.back();
      v.pop_back();
    }
    t2 = Timer::now();
    if (sum == 1) std::puts("");  // keep the loop
    floor.inflate = std::min(floor.inflate, Seconds(t1 - t0));
    floor.deflate = std::min(floor.deflate, Seconds(t2 - t1));
  }
  p.Stop();

  auto rate = [](double s) { return static_cast<double>(kPages) / s / 1e6; };
  const double floor_bytes = sizeof(uint64_t);  // a vector of page numbers
  const double bytes_per_page = static_cast<double>(bookkeeping) / static_cast<double>(kPages);
  std::printf("cmm balloon benchmark: simulate mode, %lld pages of 4 KiB, best of %d runs\n",
              static_cast<long long>(kPages), kRuns);
  std::printf("%-22s %12s %12s %8s %10s\n", "figure", "cmm", "floor", "ratio", "goal");
  std::printf("%-22s %9.1f M/s %9.1f M/s %8.2f %10s\n", "inflate pages/s", rate(cmm.inflate), rate(floor.inflate),
              rate(cmm.inflate) / rate(floor.inflate), ">= 10 M/s");
  std::printf("%-22s %9.1f M/s %9.1f M/s %8.2f %10s\n", "deflate pages/s", rate(cmm.deflate), rate(floor.deflate),
              rate(cmm.deflate) / rate(floor.deflate), ">= 10 M/s");
  std::printf("%-22s %10.3f B %10.3f B %8.3f %10s\n", "bookkeeping B/page", bytes_per_page, floor_bytes,
              bytes_per_page / floor_bytes, "<= 8 B");
  const bool met = rate(cmm.inflate) >= 10 && rate(cmm.deflate) >= 10 && bytes_per_page <= 8;
  std::printf("goals %s\n", met ? "met" : "NOT met");
  bench::Record({"balloon", "inflate (simulate)", "M pages/s", rate(cmm.inflate), rate(floor.inflate),
                 rate(cmm.inflate) / rate(floor.inflate), ">= 10 M/s", rate(cmm.inflate) >= 10});
  bench::Record({"balloon", "deflate (simulate)", "M pages/s", rate(cmm.deflate), rate(floor.deflate),
                 rate(cmm.deflate) / rate(floor.deflate), ">= 10 M/s", rate(cmm.deflate) >= 10});
  bench::Record({"balloon", "bookkeeping per loaned page", "B", bytes_per_page, floor_bytes,
                 bytes_per_page / floor_bytes, "<= 8 B", bytes_per_page <= 8});
  return 0;
}
