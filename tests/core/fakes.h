// In-memory fakes of the controller's ports, shared by every core test.
#pragma once

#include <cerrno>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/control_files.h"
#include "core/controller.h"
#include "core/ports.h"

namespace cmm::testing {

class FakeClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  void Set(TimePoint t) { now_ = t; }
  void Advance(Duration d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::seconds(1000)};
};

struct HcallRecord {
  uint64_t flags;
  uint64_t address;
  friend bool operator==(const HcallRecord&, const HcallRecord&) = default;
};

// A hypervisor that keeps the state of every CMO page and records calls.
class FakeHypervisor final : public Hypervisor {
 public:
  bool has_cmo = true;
  uint64_t cmo_page_size = 4096;
  papr::MppData mpp;
  papr::Rc get_mpp_rc = papr::kSuccess;
  int get_mpp_calls = 0;
  bool record = true;
  std::vector<HcallRecord> calls;
  // Return a non-success code to fail this PageInit (nothing changes then).
  std::function<papr::Rc(uint64_t flags, uint64_t address)> fail;
  std::set<uint64_t> loaned;  // CMO page addresses
  // Offer the batched call for this many CMO pages (0: not offered).
  uint64_t max_batch = 0;
  int batch_calls = 0;
  // With `deferred`, a submitted batch is done only when it is completed,
  // as a hypervisor in another process does it; `max_in_flight` is the
  // most batches that were waiting at once.
  bool deferred = false;
  size_t max_in_flight = 0;

  bool HasCmo() const override { return has_cmo; }
  uint64_t MaxBatch() const override { return max_batch; }
  // Each address goes through PageInit, so `fail` sees batched pages too.
  BatchResult PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses) override {
    ++batch_calls;
    if (addresses.size() > max_batch) return {0, papr::kParameter};
    return Hypervisor::PageInitBatch(flags, addresses);
  }
  void SubmitBatch(uint64_t flags, std::span<const uint64_t> addresses) override {
    if (!deferred) return Hypervisor::SubmitBatch(flags, addresses);
    queued_.push_back({flags, {addresses.begin(), addresses.end()}});
    max_in_flight = std::max(max_in_flight, queued_.size());
  }
  BatchResult CompleteBatch() override {
    if (!deferred) return Hypervisor::CompleteBatch();
    const auto [flags, addresses] = std::move(queued_.front());
    queued_.pop_front();
    return PageInitBatch(flags, addresses);
  }
  uint64_t CmoPageSize() const override { return cmo_page_size; }
  papr::Rc GetMpp(papr::MppData& out) override {
    ++get_mpp_calls;
    if (get_mpp_rc == papr::kSuccess) out = mpp;
    return get_mpp_rc;
  }
  papr::Rc PageInit(uint64_t flags, uint64_t address) override {
    if (record) calls.push_back({flags, address});
    if (fail) {
      const papr::Rc rc = fail(flags, address);
      if (rc != papr::kSuccess) return rc;
    }
    if (flags == papr::kPageSetLoaned) {
      loaned.insert(address);
    } else if (flags == papr::kPageSetActive) {
      loaned.erase(address);
    } else {
      return papr::kParameter;
    }
    return papr::kSuccess;
  }

 private:
  std::deque<std::pair<uint64_t, std::vector<uint64_t>>> queued_;
};

// Guest RAM as page states; the first `normal_pages` are in Zone Normal.
class FakeGuestMemory final : public GuestMemory {
 public:
  enum class State { kFree, kUsed, kBalloon };

  FakeGuestMemory(uint64_t pages, uint64_t page_size = 4096, uint64_t normal_pages = UINT64_MAX)
      : page_size_(page_size), normal_pages_(normal_pages), state_(pages, State::kFree) {
    for (uint64_t i = 0; i < pages; ++i) total_[ZoneOf(Pfn{i})] += 1;
  }

  // Fails the balloon's allocations while false.
  bool allow_alloc = true;
  int alloc_calls = 0;
  // Called before each balloon allocation (e.g. to start a hot-remove).
  std::function<void()> before_alloc;

  PageGeometry Geometry() const override { return PageGeometry(page_size_); }
  uint64_t PageSpan() const override { return state_.size(); }
  std::optional<Pfn> AllocBalloonPage() override {
    ++alloc_calls;
    if (before_alloc) before_alloc();
    if (!allow_alloc) return std::nullopt;
    return Take(State::kBalloon);
  }
  void FreePage(Pfn p) override {
    if (state_.at(p.value) == State::kFree) throw std::logic_error("double free");
    state_[p.value] = State::kFree;
  }
  void AdjustTotalram(Pfn p, Pages delta) override { total_[ZoneOf(p)] += delta.value(); }
  Pages Totalram() const override {
    int64_t t = 0;
    for (const auto& [z, n] : total_) t += n;
    return Pages(t);
  }
  Zone ZoneOf(Pfn p) const override { return p.value < normal_pages_ ? Zone::kNormal : Zone::kMovable; }

  // A page the "rest of the guest" uses (not the balloon).
  std::optional<Pfn> TakeUsed() { return Take(State::kUsed); }
  // Any free page in the given zone, for compaction targets.
  std::optional<Pfn> TakeFreeIn(Zone z) {
    for (uint64_t i = 0; i < state_.size(); ++i) {
      if (state_[i] == State::kFree && ZoneOf(Pfn{i}) == z) {
        state_[i] = State::kUsed;
        return Pfn{i};
      }
    }
    return std::nullopt;
  }
  State state(Pfn p) const { return state_.at(p.value); }
  void set_state(Pfn p, State s) { state_.at(p.value) = s; }
  uint64_t Count(State s) const {
    uint64_t n = 0;
    for (auto v : state_) n += (v == s);
    return n;
  }
  int64_t ZoneTotal(Zone z) const { return total_.count(z) ? total_.at(z) : 0; }

 private:
  std::optional<Pfn> Take(State s) {
    for (uint64_t i = 0; i < state_.size(); ++i) {
      if (state_[i] == State::kFree) {
        state_[i] = s;
        return Pfn{i};
      }
    }
    return std::nullopt;
  }
  uint64_t page_size_;
  uint64_t normal_pages_;
  std::vector<State> state_;
  std::map<Zone, int64_t> total_;
};

// Records every registration; `fail_step` names one to fail with `fail_errno`.
class FakeKernel final : public GuestKernel {
 public:
  std::vector<std::string> events;
  std::string fail_step;  // "oom", "reboot", "attributes", "memory"
  int fail_errno = ENOMEM;
  OomListener* oom = nullptr;
  RebootListener* reboot = nullptr;
  MemoryListener* memory = nullptr;
  ControlFiles* files = nullptr;
  int memory_priority = -1;

  int RegisterOom(OomListener& l) override { return Reg("oom", [&] { oom = &l; }); }
  void UnregisterOom(OomListener&) override { Unreg("oom", [&] { oom = nullptr; }); }
  int RegisterReboot(RebootListener& l) override { return Reg("reboot", [&] { reboot = &l; }); }
  void UnregisterReboot(RebootListener&) override { Unreg("reboot", [&] { reboot = nullptr; }); }
  int RegisterAttributes(ControlFiles& f) override { return Reg("attributes", [&] { files = &f; }); }
  void UnregisterAttributes(ControlFiles&) override { Unreg("attributes", [&] { files = nullptr; }); }
  int RegisterMemory(MemoryListener& l, int priority) override {
    return Reg("memory", [&] { memory = &l; memory_priority = priority; });
  }
  void UnregisterMemory(MemoryListener&) override { Unreg("memory", [&] { memory = nullptr; }); }

 private:
  int Reg(const std::string& what, const std::function<void()>& apply) {
    if (fail_step == what) {
      events.push_back("register " + what + " failed");
      return fail_errno;
    }
    events.push_back("register " + what);
    apply();
    return 0;
  }
  void Unreg(const std::string& what, const std::function<void()>& apply) {
    events.push_back("unregister " + what);
    apply();
  }
};

class FakePollThread final : public PollThread {
 public:
  int fail_errno = 0;
  int starts = 0;
  int stops = 0;
  Pollable* body = nullptr;

  int Start(Pollable& b) override {
    if (fail_errno != 0) return fail_errno;
    ++starts;
    body = &b;
    return 0;
  }
  void Stop() override {
    ++stops;
    body = nullptr;
  }
  bool running() const { return body != nullptr; }
};

class CapturingLog final : public LogSink {
 public:
  std::vector<std::string> info;
  std::vector<std::string> error;
  void Info(std::string_view l) override { info.emplace_back(l); }
  void Error(std::string_view l) override { error.emplace_back(l); }
  bool HasInfo(std::string_view needle) const {
    for (const auto& l : info) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

// A controller wired to fakes. Defaults: 4 KiB pages, 4 KiB CMO pages,
// min_mem_mb 0 so small RAM sizes can balloon everything.
struct Rig {
  explicit Rig(uint64_t pages = 1024, ParamValues p = Defaults(), uint64_t page_size = 4096,
               uint64_t normal_pages = UINT64_MAX)
      : mem(pages, page_size, normal_pages),
        ctrl(p, ControllerPorts{&hv, mem, kernel, thread, clock, log}) {}

  static ParamValues Defaults() {
    ParamValues p;
    p.min_mem_mb = 0;
    return p;
  }

  // The hypervisor asks for `bytes` more (or back, when negative).
  void Request(int64_t bytes) { hv.mpp.loan_request = bytes; }

  // Runs the poll thread up to and including its next round.
  void Round() {
    if (!thread.running()) return;
    next = ctrl.Poll(clock.Now());  // no-op if a deadline is already set
    clock.Set(next);
    next = ctrl.Poll(clock.Now());
  }
  // Drives the poll loop until the clock has advanced by `d`.
  void RunFor(Duration d) {
    const TimePoint end = clock.Now() + d;
    if (!thread.running()) {
      clock.Set(end);
      return;
    }
    next = ctrl.Poll(clock.Now());
    while (next <= end) {
      clock.Set(next);
      next = ctrl.Poll(clock.Now());
    }
    clock.Set(end);
  }

  FakeClock clock;
  FakeHypervisor hv;
  FakeGuestMemory mem;
  FakeKernel kernel;
  FakePollThread thread;
  CapturingLog log;
  Controller ctrl;
  TimePoint next{};
};

}  // namespace cmm::testing
