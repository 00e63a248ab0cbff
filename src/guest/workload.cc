#include "guest/workload.h"

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

tl::expected<uint64_t, std::string> Size(const std::string& text, const std::string& what) {
  const auto v = ParseSize(text);
  if (!v) return tl::unexpected(fmt::format("{} \"{}\" is not a size; try 256M or 1G", what, text));
  return *v;
}

tl::expected<uint64_t, std::string> Rate(std::string text) {
  if (text.ends_with("/s")) text.resize(text.size() - 2);
  return Size(text, "rate");
}

tl::expected<uint64_t, std::string> JsonSize(const nlohmann::json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) return Size(v.get<std::string>(), what);
  return tl::unexpected(fmt::format("{} must be a size such as \"256M\" or a number of bytes", what));
}

}  // namespace

tl::expected<WorkloadSpec, std::string> ParsePhases(std::string_view json, std::string text) {
  const auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return tl::unexpected(std::string("phases: not a JSON object"));
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kPhases;
  spec.text = std::move(text);
  const std::string kind = doc.value("kind", "movable");
  if (kind != "movable" && kind != "unmovable") {
    return tl::unexpected(fmt::format("phases: kind \"{}\" must be movable or unmovable", kind));
  }
  spec.page_kind = kind == "movable" ? PageKind::kMovable : PageKind::kUnmovable;
  if (doc.contains("rate")) {
    auto rate = JsonSize(doc["rate"], "phases: rate");
    if (!rate) return tl::unexpected(rate.error());
    spec.rate = *rate;
  }
  if (doc.contains("repeat_after")) {
    if (!doc["repeat_after"].is_number() || doc["repeat_after"].get<double>() <= 0) {
      return tl::unexpected(std::string("phases: repeat_after must be a positive number of seconds"));
    }
    spec.repeat_after_s = doc["repeat_after"].get<double>();
  }
  if (!doc.contains("phases") || !doc["phases"].is_array() || doc["phases"].empty()) {
    return tl::unexpected(std::string("phases: needs a non-empty array \"phases\" of {\"at\": SECONDS, \"size\": SIZE}"));
  }
  for (size_t i = 0; i < doc["phases"].size(); ++i) {
    const auto& p = doc["phases"][i];
    if (!p.is_object() || !p.contains("at") || !p["at"].is_number() || p["at"].get<double>() < 0 ||
        !p.contains("size")) {
      return tl::unexpected(fmt::format("phases[{}]: needs \"at\" (seconds, >= 0) and \"size\"", i));
    }
    auto bytes = JsonSize(p["size"], fmt::format("phases[{}].size", i));
    if (!bytes) return tl::unexpected(bytes.error());
    const double at = p["at"].get<double>();
    if (!spec.phases.empty() && at <= spec.phases.back().at_s) {
      return tl::unexpected(fmt::format("phases[{}]: \"at\" must increase", i));
    }
    if (spec.repeat_after_s > 0 && at >= spec.repeat_after_s) {
      return tl::unexpected(fmt::format("phases[{}]: starts after repeat_after", i));
    }
    spec.phases.push_back({at, *bytes});
  }
  return spec;
}

tl::expected<WorkloadSpec, std::string> ParseWorkload(std::string_view text) {
  const std::string s(text);
  const auto colon = s.find(':');
  if (colon == std::string::npos) {
    return tl::unexpected(fmt::format("workload \"{}\": expected KIND:ARG, e.g. hog:256M, unmovable:16M, cache:512M, "
                                      "phases:FILE.json",
                                      s));
  }
  const std::string kind = s.substr(0, colon);
  const std::string rest = s.substr(colon + 1);
  auto fail = [&](const std::string& why) { return tl::unexpected(fmt::format("workload \"{}\": {}", s, why)); };
  if (kind == "phases") {
    std::ifstream in(rest);
    if (!in) return fail(fmt::format("cannot read {}", rest));
    std::stringstream buf;
    buf << in.rdbuf();
    auto spec = ParsePhases(buf.str(), s);
    if (!spec) return fail(spec.error());
    return spec;
  }
  WorkloadSpec spec;
  spec.text = s;
  if (kind == "hog") {
    spec.kind = WorkloadKind::kHog;
  } else if (kind == "unmovable") {
    spec.kind = WorkloadKind::kUnmovable;
    spec.page_kind = PageKind::kUnmovable;
  } else if (kind == "cache") {
    spec.kind = WorkloadKind::kCache;
  } else {
    return fail(fmt::format("unknown kind \"{}\"; kinds are hog, unmovable, cache, phases", kind));
  }
  const auto colon2 = rest.find(':');
  auto bytes = Size(rest.substr(0, colon2), "size");
  if (!bytes) return fail(bytes.error());
  if (*bytes == 0) return fail("size must be more than 0");
  spec.bytes = *bytes;
  if (colon2 != std::string::npos) {
    auto rate = Rate(rest.substr(colon2 + 1));
    if (!rate) return fail(rate.error());
    spec.rate = *rate;
  }
  return spec;
}

// ---- Workload ---------------------------------------------------------------

Workload::Workload(WorkloadSpec spec, PageAllocator& memory, PageCache& cache)
    : spec_(std::move(spec)), memory_(memory), cache_(cache), page_size_(memory.Geometry().size()) {}

Workload::~Workload() { Release(); }

uint64_t Workload::TargetPages(TimePoint now) const {
  if (spec_.kind != WorkloadKind::kPhases) return spec_.bytes / page_size_;
  double t = std::chrono::duration<double>(now - start_).count();
  if (spec_.repeat_after_s > 0) t = std::fmod(t, spec_.repeat_after_s);
  uint64_t bytes = 0;
  for (const Phase& p : spec_.phases) {
    if (p.at_s > t) break;
    bytes = p.bytes;
  }
  return bytes / page_size_;
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

WorkloadRunner::WorkloadRunner(std::vector<std::unique_ptr<Workload>> workloads) : workloads_(std::move(workloads)) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      for (auto& w : workloads_) w->Step(std::chrono::steady_clock::now());
      lock.lock();
      wake_.wait_for(lock, kPeriod, [this] { return stop_; });
    }
  });
}

WorkloadRunner::~WorkloadRunner() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  for (auto& w : workloads_) w->Release();
}

std::vector<WorkloadStats> WorkloadRunner::Stats() const {
  std::vector<WorkloadStats> out;
  for (const auto& w : workloads_) out.push_back(w->Stats());
  return out;
}

}  // namespace cmm::guest
