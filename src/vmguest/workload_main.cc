// cmm-vm-workload: the workloads of `cmm guest --workload`, inside a real
// Linux guest. The same specs (hog, unmovable, cache, phases); memory comes
// from the guest kernel in 1 MiB chunks of 4 KiB pages, each page carrying
// the same pattern as in a partition (from its number and a generation),
// checked when touched, before it is freed, and when read back from the
// cache file in tmpfs. Once a second it prints its counters on the console,
// where `cmm vm run` reads them back. Static, so the initramfs needs no libc.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "guest/pattern.h"
#include "guest/workload_spec.h"

namespace {

using namespace cmm::guest;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kChunk = 1 << 20;  // allocated and freed as a unit
constexpr uint64_t kPagesPerChunk = kChunk / kPage;

volatile sig_atomic_t g_stop = 0;

struct Counters {
  uint64_t held = 0, allocated = 0, freed = 0, checked = 0, errors = 0, failures = 0;
};

// Checks every page of a chunk against (number, generation).
void Check(const uint8_t* chunk, uint64_t first_page, uint64_t generation, Counters& c) {
  for (uint64_t i = 0; i < kPagesPerChunk; ++i) {
    if (!CheckPattern(std::span<const uint8_t>(chunk + i * kPage, kPage), first_page + i, generation)) ++c.errors;
    ++c.checked;
  }
}

void Fill(uint8_t* chunk, uint64_t first_page, uint64_t generation) {
  for (uint64_t i = 0; i < kPagesPerChunk; ++i) {
    FillPattern(std::span<uint8_t>(chunk + i * kPage, kPage), first_page + i, generation);
  }
}

// hog, unmovable and phases: memory held in chunks, toward a target.
class Hog {
 public:
  explicit Hog(WorkloadSpec spec, uint64_t id) : spec_(std::move(spec)), base_(id << 40) {}
  void Step(double t, double dt, Counters& c) {
    const uint64_t want = TargetBytes(spec_, t) / kChunk;
    credit_ += spec_.rate == 0 ? 1e9 : dt * static_cast<double>(spec_.rate) / kChunk;
    while (chunks_.size() < want && credit_ >= 1 && Clock::now() >= backoff_) {
      void* p = mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        ++c.failures;
        backoff_ = Clock::now() + std::chrono::seconds(1);
        break;
      }
      const uint64_t n = next_++;
      Fill(static_cast<uint8_t*>(p), base_ + n * kPagesPerChunk, 0);
      chunks_.push_back({static_cast<uint8_t*>(p), n, 0});
      ++c.allocated;
      credit_ -= 1;
    }
    if (credit_ > 64) credit_ = 64;
    while (chunks_.size() > want) {
      Release(chunks_.back(), c);
      chunks_.pop_back();
    }
    // Touch a few: check, then rewrite with the next generation.
    for (int k = 0; k < 4 && !chunks_.empty(); ++k) {
      Chunk& ch = chunks_[cursor_++ % chunks_.size()];
      Check(ch.p, base_ + ch.n * kPagesPerChunk, ch.gen, c);
      Fill(ch.p, base_ + ch.n * kPagesPerChunk, ++ch.gen);
    }
    c.held += chunks_.size() * kChunk;
  }
  void Stop(Counters& c) {
    for (Chunk& ch : chunks_) Release(ch, c);
    chunks_.clear();
  }

 private:
  struct Chunk {
    uint8_t* p;
    uint64_t n, gen;
  };
  void Release(Chunk& ch, Counters& c) {
    Check(ch.p, base_ + ch.n * kPagesPerChunk, ch.gen, c);
    munmap(ch.p, kChunk);
    ++c.freed;
  }
  WorkloadSpec spec_;
  uint64_t base_;
  std::vector<Chunk> chunks_;
  uint64_t next_ = 0, cursor_ = 0;
  double credit_ = 0;
  Clock::time_point backoff_{};
};

// cache: a file in tmpfs written with the pattern, then read back and checked.
class Cache {
 public:
  Cache(WorkloadSpec spec, uint64_t id) : spec_(std::move(spec)), base_((id << 40) | (1ULL << 39)) {
    path_ = "/tmp/cmm-cache-" + std::to_string(id);
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  void Step(double, double dt, Counters& c) {
    if (fd_ < 0) return;
    const uint64_t chunks = spec_.bytes / kChunk;
    credit_ += spec_.rate == 0 ? 1e9 : dt * static_cast<double>(spec_.rate) / kChunk;
    std::vector<uint8_t> buf(kChunk);
    while (written_ < chunks && credit_ >= 1) {
      Fill(buf.data(), base_ + written_ * kPagesPerChunk, 0);
      if (pwrite(fd_, buf.data(), kChunk, static_cast<off_t>(written_ * kChunk)) != static_cast<ssize_t>(kChunk)) {
        ++c.failures;
        break;
      }
      ++written_;
      ++c.allocated;
      credit_ -= 1;
    }
    if (credit_ > 64) credit_ = 64;
    for (int k = 0; k < 4 && written_ > 0; ++k) {
      const uint64_t n = cursor_++ % written_;
      if (pread(fd_, buf.data(), kChunk, static_cast<off_t>(n * kChunk)) == static_cast<ssize_t>(kChunk)) {
        Check(buf.data(), base_ + n * kPagesPerChunk, 0, c);
      }
    }
    c.held += written_ * kChunk;
  }
  void Stop(Counters&) {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }

 private:
  WorkloadSpec spec_;
  uint64_t base_;
  std::string path_;
  int fd_ = -1;
  uint64_t written_ = 0, cursor_ = 0;
  double credit_ = 0;
};

void Report(const char* what, double t, const Counters& c) {
  std::printf("cmm-workload: %s t=%.0fs held=%lluM allocated=%lluM freed=%lluM checked=%llu integrity_errors=%llu "
              "alloc_failures=%llu\n",
              what, t, static_cast<unsigned long long>(c.held >> 20), static_cast<unsigned long long>(c.allocated),
              static_cast<unsigned long long>(c.freed), static_cast<unsigned long long>(c.checked),
              static_cast<unsigned long long>(c.errors), static_cast<unsigned long long>(c.failures));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cmm-vm-workload SPEC... (hog:SIZE[:RATE], unmovable:SIZE[:RATE], cache:SIZE[:RATE], "
                         "phases:FILE)\n");
    return 2;
  }
  std::vector<Hog> hogs;
  std::vector<Cache> caches;
  for (int i = 1; i < argc; ++i) {
    auto spec = ParseWorkload(argv[i]);
    if (!spec) {
      std::fprintf(stderr, "cmm-workload: %s\n", spec.error().c_str());
      return 2;
    }
    if (spec->kind == WorkloadKind::kCache) {
      caches.emplace_back(std::move(*spec), static_cast<uint64_t>(i));
    } else {
      hogs.emplace_back(std::move(*spec), static_cast<uint64_t>(i));
    }
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  const auto start = Clock::now();
  auto last = start, reported = start;
  Counters total;
  while (g_stop == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto now = Clock::now();
    const double t = std::chrono::duration<double>(now - start).count();
    const double dt = std::chrono::duration<double>(now - last).count();
    last = now;
    total.held = 0;
    for (Hog& h : hogs) h.Step(t, dt, total);
    for (Cache& c : caches) c.Step(t, dt, total);
    if (now - reported >= std::chrono::seconds(1)) {
      reported = now;
      Report("running", t, total);
    }
  }
  for (Hog& h : hogs) h.Stop(total);
  for (Cache& c : caches) c.Stop(total);
  total.held = 0;
  Report("stopped", std::chrono::duration<double>(Clock::now() - start).count(), total);
  return total.errors == 0 ? 0 : 1;
}
