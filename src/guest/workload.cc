#include "guest/workload.h"

#include <system_error>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/size_text.h"
#include "guest/pattern.h"

namespace cmm::guest {

namespace {

constexpr uint64_t kBurstPages = 4096;  // most pages allocated or freed in one step
constexpr uint64_t kTouchPages = 64;    // pages checked and rewritten per step
constexpr auto kBackoff = std::chrono::seconds(1);  // after an OOM event
constexpr auto kPeriod = std::chrono::milliseconds(10);

}  // namespace

// ---- Workload ---------------------------------------------------------------

Workload::Workload(WorkloadSpec spec, PageAllocator& memory, PageCache& cache)
    : spec_(std::move(spec)), memory_(memory), cache_(cache), page_size_(memory.Geometry().size()) {}

Workload::~Workload() { Release(); }

uint64_t Workload::TargetPages(TimePoint now) const {
  return TargetBytes(spec_, std::chrono::duration<double>(now - start_).count()) / page_size_;
}

bool Workload::AllocOne() {
  auto page = memory_.Alloc(spec_.page_kind);
  if (!page) return false;
  memory_.Access(*page, [&](std::span<uint8_t> bytes, uint64_t& generation) {
    generation = 1;
    FillPattern(bytes, page->value, generation);
  });
  pages_.push_back(*page);
  allocated_.fetch_add(1);
  return true;
}

void Workload::Touch(Handle h) {
  bool good = true;
  memory_.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
    good = CheckPattern(bytes, h.value, generation);
    FillPattern(bytes, h.value, ++generation);
  });
  if (!good) memory_.ReportIntegrityError(fmt::format("workload {}: page of handle {:#x} reads back wrong", spec_.text, h.value));
  touched_.fetch_add(1);
}

void Workload::FreeOne() {
  const Handle h = pages_.back();
  pages_.pop_back();
  bool good = true;
  memory_.Access(h, [&](std::span<uint8_t> bytes, uint64_t& generation) {
    good = CheckPattern(bytes, h.value, generation);
  });
  if (!good) {
    memory_.ReportIntegrityError(
        fmt::format("workload {}: page of handle {:#x} is wrong before its free", spec_.text, h.value));
  }
  memory_.Free(h);
  freed_.fetch_add(1);
}

void Workload::Step(TimePoint now) {
  if (!started_) {
    started_ = true;
    start_ = last_ = now;
  }
  const double dt = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (spec_.rate == 0) {
    credit_ = static_cast<double>(kBurstPages);
  } else {
    const double per_s = static_cast<double>(spec_.rate) / static_cast<double>(page_size_);
    credit_ = std::min(credit_ + per_s * dt, std::max(1.0, per_s / 4));
  }
  const uint64_t target = TargetPages(now);
  target_.store(target);

  if (spec_.kind == WorkloadKind::kCache) {
    // Read the source in order, round and round: once at full speed, then
    // a few pages per step so the cache stays warm and checked.
    const bool first_pass = cache_cursor_ < target;
    uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(credit_), first_pass ? kBurstPages : kTouchPages);
    if (now < backoff_until_) n = 0;
    for (uint64_t i = 0; i < n; ++i) {
      auto hit = cache_.Read(cache_cursor_ % target);
      if (!hit) {
        failures_.fetch_add(1);
        backoff_until_ = now + kBackoff;
        break;
      }
      (*hit ? hits_ : misses_).fetch_add(1);
      ++cache_cursor_;
      credit_ -= 1;
    }
    held_.store(cache_.pages());
    return;
  }

  if (pages_.size() < target && now >= backoff_until_) {
    const uint64_t n = std::min<uint64_t>({target - pages_.size(), static_cast<uint64_t>(credit_), kBurstPages});
    for (uint64_t i = 0; i < n; ++i) {
      if (!AllocOne()) {
        failures_.fetch_add(1);
        backoff_until_ = now + kBackoff;
        break;
      }
      credit_ -= 1;
    }
  } else if (pages_.size() > target) {
    const uint64_t n = std::min<uint64_t>(pages_.size() - target, kBurstPages);
    for (uint64_t i = 0; i < n; ++i) FreeOne();
  }
  for (uint64_t i = 0; i < kTouchPages && !pages_.empty(); ++i) {
    touch_cursor_ = (touch_cursor_ + 1) % pages_.size();
    Touch(pages_[touch_cursor_]);
  }
  held_.store(pages_.size());
}

void Workload::Release() {
  while (!pages_.empty()) FreeOne();
  held_.store(0);
}

WorkloadStats Workload::Stats() const {
  WorkloadStats s;
  s.spec = spec_.text;
  s.target_pages = target_.load();
  s.held_pages = held_.load();
  s.allocated = allocated_.load();
  s.freed = freed_.load();
  s.touched = touched_.load();
  s.alloc_failures = failures_.load();
  s.cache_hits = hits_.load();
  s.cache_misses = misses_.load();
  return s;
}

// ---- WorkloadRunner ---------------------------------------------------------

WorkloadRunner::WorkloadRunner(std::vector<std::unique_ptr<Workload>> workloads, Clock& clock)
    : workloads_(std::move(workloads)), runner_(clock) {
  if (const int rc = runner_.Start(*this); rc != 0) {
    throw std::system_error(rc, std::generic_category(), "workload thread");
  }
}

TimePoint WorkloadRunner::Poll(TimePoint now) {
  for (auto& w : workloads_) w->Step(now);
  return now + kPeriod;
}

WorkloadRunner::~WorkloadRunner() {
  runner_.Stop();
  for (auto& w : workloads_) w->Release();
}

std::vector<WorkloadStats> WorkloadRunner::Stats() const {
  std::vector<WorkloadStats> out;
  for (const auto& w : workloads_) out.push_back(w->Stats());
  return out;
}

}  // namespace cmm::guest
