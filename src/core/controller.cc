#include "core/controller.h"

#include <algorithm>
#include <cerrno>
#include <deque>

#include <fmt/format.h>

#include "core/control_files.h"
#include "core/ktext.h"

namespace cmm {

namespace {
uint64_t CmoPageSizeOf(const ControllerPorts& ports, const PageGeometry& g) {
  if (ports.hypervisor == nullptr) return g.size();
  const uint64_t s = ports.hypervisor->CmoPageSize();
  return s == 0 ? g.size() : s;
}
}  // namespace

Controller::Controller(const ParamValues& params, const ControllerPorts& ports)
    : params_(params),
      ports_(ports),
      geometry_(ports.memory.Geometry()),
      cmo_page_size_(CmoPageSizeOf(ports, geometry_)),
      balloon_(ports.memory.PageSpan()),
      files_(std::make_unique<ControlFiles>(*this)),
      disabled_(params.disable != 0) {}

Controller::~Controller() = default;

template <class... Args>
void Controller::Debug(std::string_view format, const Args&... args) {
  if (params_.debug.load(std::memory_order_relaxed) == 0) return;
  ports_.log.Info(fmt::format("cmm: {}", fmt::vformat(format, fmt::make_format_args(args...))));
}

TimePoint Controller::After(uint32_t seconds) const {
  // A sleep of 0 s is still one scheduler tick, as msleep_interruptible(0)
  // is in the kernel (S3): with delay=0 the loop polls often, never spins.
  if (seconds == 0) return ports_.clock.Now() + kSchedulerTick;
  return ports_.clock.Now() + std::chrono::seconds(seconds);
}

// ---- S9 / S10: start and stop ------------------------------------------

int Controller::Start() {
  MutexLock lock(admin_mu_);
  if (!params_.simulate && (ports_.hypervisor == nullptr || !ports_.hypervisor->HasCmo())) return EOPNOTSUPP;

  GuestKernel& k = ports_.kernel;
  int rc = k.RegisterOom(*this);
  if (rc != 0) return rc;
  if ((rc = k.RegisterReboot(*this)) != 0) {
    k.UnregisterOom(*this);
    return rc;
  }
  if ((rc = k.RegisterAttributes(*files_)) != 0) {
    k.UnregisterReboot(*this);
    k.UnregisterOom(*this);
    return rc;
  }
  if ((rc = k.RegisterMemory(*this, kMemoryNotifierPriority)) != 0) {
    k.UnregisterAttributes(*files_);
    k.UnregisterReboot(*this);
    k.UnregisterOom(*this);
    return rc;
  }
  if (disabled_.load()) return 0;
  if ((rc = StartThread()) != 0) {
    k.UnregisterMemory(*this);
    k.UnregisterAttributes(*files_);
    k.UnregisterReboot(*this);
    k.UnregisterOom(*this);
    return rc;
  }
  return 0;
}

void Controller::Stop() {
  MutexLock lock(admin_mu_);
  StopThread();
  GuestKernel& k = ports_.kernel;
  k.UnregisterOom(*this);
  k.UnregisterReboot(*this);
  k.UnregisterMemory(*this);
  Deflate(loaned());
  k.UnregisterAttributes(*files_);
}

int Controller::StartThread() {
  phase_ = Phase::kStarting;
  const int rc = ports_.thread.Start(*this);
  if (rc != 0) {
    phase_ = Phase::kStopped;
    return rc;
  }
  thread_running_.store(true);
  return 0;
}

void Controller::StopThread() {
  if (!thread_running_.load()) return;
  ports_.thread.Stop();
  thread_running_.store(false);
  phase_ = Phase::kStopped;
}

// ---- S3: the poll loop, one step at a time ------------------------------

TimePoint Controller::Poll(TimePoint now) {
  switch (phase_) {
    case Phase::kStopped:
    case Phase::kStarting:
      // The thread's first act is to sleep.
      phase_ = Phase::kSleeping;
      return deadline_ = After(params_.delay.load());
    case Phase::kHotplugPause:
      if (now < deadline_) return deadline_;
      phase_ = Phase::kSleeping;  // then back to the top of the loop: sleep again
      return deadline_ = After(params_.delay.load());
    case Phase::kSleeping:
      if (now < deadline_) return deadline_;
      break;
  }

  switch (hotplug_.BeginRound()) {
    case HotplugLock::Round::kInProgress:
      Debug("Hotplug operation in progress, activity suspended");
      return deadline_ = After(params_.delay.load());
    case HotplugLock::Round::kOccurred: {
      const uint32_t pause = params_.hotplug_delay.load();
      Debug("Hotplug operation has occurred, loaning activity suspended for {} seconds.", pause);
      phase_ = Phase::kHotplugPause;
      return deadline_ = After(pause);
    }
    case HotplugLock::Round::kClear:
      break;
  }
  Round();
  return deadline_ = After(params_.delay.load());
}

void Controller::Round() {
  ComputeTarget();
  const Pages loaned = this->loaned();
  const Pages target = loaned_target();
  if (target > loaned) {
    if (Inflate(target - loaned) != Pages(0)) loaned_target_.store(loaned.value());
  } else if (target < loaned) {
    Deflate(loaned - target);
  }
}

// ---- S2: the target -----------------------------------------------------

void Controller::ComputeTarget() {
  const int64_t loaned = loaned_.load();
  const int64_t total = ports_.memory.Totalram().value() + loaned;
  // The kernel computes this in unsigned long; keep its wrap-around.
  const int64_t min_mem = static_cast<int64_t>(params_.min_mem_mb.load() * 1024 * 1024 / geometry_.size());
  int64_t request = 0;
  int64_t target = 0;

  if (!params_.simulate) {
    papr::MppData mpp;
    if (ports_.hypervisor->GetMpp(mpp) != papr::kSuccess) return;  // keep the previous target
    request = geometry_.WholePages(Bytes(mpp.loan_request)).value();  // truncates toward zero
    target = request + loaned;
  } else {
    target = geometry_.KbToPages(params_.simulate_loan_target_kb.load()).value();
    request = target - loaned;
  }

  if (target < 0 || total < min_mem) target = 0;
  const auto oom = static_cast<uint64_t>(oom_freed_.load());
  if (static_cast<uint64_t>(target) > oom) {
    target -= static_cast<int64_t>(oom);
  } else {
    target = 0;
  }
  if (min_mem > total - target) target = total - min_mem;
  if (target < 0) target = 0;
  loaned_target_.store(target);

  Debug("delta = {}, loaned = {}, target = {}, oom = {}, totalram = {}", request, loaned, target, oom,
        ports_.memory.Totalram().value());
}

// ---- S4 / S5: inflate and deflate ---------------------------------------

uint64_t Controller::CmoPagesPerPage() const {
  return geometry_.size() > cmo_page_size_ ? geometry_.size() / cmo_page_size_ : 1;
}

papr::Rc Controller::SetPageState(Pfn page, uint64_t flags, uint64_t undo) {
  if (params_.simulate) return papr::kSuccess;
  const uint64_t base = geometry_.Address(page);
  const uint64_t step = cmo_page_size_;
  const uint64_t count = CmoPagesPerPage();
  papr::Rc rc = papr::kSuccess;
  uint64_t done = 0;
  for (; done < count; ++done) {
    rc = ports_.hypervisor->PageInit(flags, base + done * step);
    if (rc != papr::kSuccess) break;
  }
  if (rc != papr::kSuccess) {
    while (done-- > 0) ports_.hypervisor->PageInit(undo, base + done * step);
  }
  return rc;
}

uint64_t Controller::BatchPages() const {
  if (params_.simulate || ports_.hypervisor == nullptr) return 0;
  const uint64_t per_call = ports_.hypervisor->MaxBatch() / CmoPagesPerPage();
  return per_call > 1 ? per_call : 0;
}

void Controller::AddressesOf(std::span<const Pfn> pages, std::vector<uint64_t>& out) const {
  const uint64_t per_page = CmoPagesPerPage();
  out.clear();
  for (const Pfn p : pages) {
    const uint64_t base = geometry_.Address(p);
    for (uint64_t i = 0; i < per_page; ++i) out.push_back(base + i * cmo_page_size_);
  }
}

void Controller::TakeIntoBalloon(Pfn page) {
  balloon_.Enqueue(page);
  loaned_.fetch_add(1);
  ports_.memory.AdjustTotalram(page, Pages(-1));
}

void Controller::GiveBack(Pfn page) {
  ports_.memory.AdjustTotalram(page, Pages(1));
  ports_.memory.FreePage(page);
  loaned_.fetch_sub(1);
}

Pages Controller::Inflate(Pages nr) {
  Debug("Begin request for {} pages", nr.value());
  if (const uint64_t batch = BatchPages(); batch != 0) return InflateBatched(nr, batch);
  Pages left = nr;
  GuestMemory& mem = ports_.memory;
  while (left > Pages(0)) {
    if (!hotplug_.Quiet()) break;
    const auto page = mem.AllocBalloonPage();
    if (!page) break;
    const papr::Rc rc = SetLoaned(*page);
    if (rc != papr::kSuccess) {
      ports_.log.Error(fmt::format("cmm: Can not set page to loaned. rc={}", rc));
      mem.FreePage(*page);
      break;
    }
    TakeIntoBalloon(*page);
    --left;
  }
  Debug("End request with {} pages unfulfilled", left.value());
  return left;
}

Pages Controller::Deflate(Pages nr) {
  Debug("Begin free of {} pages.", nr.value());
  if (const uint64_t batch = BatchPages(); batch != 0) return DeflateBatched(nr, batch);
  Pages left = nr;
  while (left > Pages(0)) {
    const auto page = balloon_.Dequeue();
    if (!page) break;
    SetActive(*page);  // errors ignored, as every caller does
    GiveBack(*page);
    --left;
  }
  Debug("End request with {} pages unfulfilled", left.value());
  return left;
}

// Takes up to `batch` pages (checking the hotplug lock before each, as the
// single-call loop does), loans all their CMO pages in one call, and keeps
// the pages fully loaned. Two batches are kept in flight: the next one's
// pages are picked and recorded while the hypervisor works on the current.
// On a failure the failed page's CMO pages done so far are set active again
// in reverse, the batch sent after it (if any) is undone whole, the failed
// page and every later one go back to the allocator, and the round stops:
// the pages that end up loaned are exactly those the one-call-per-CMO-page
// loop would loan.
Pages Controller::InflateBatched(Pages nr, uint64_t batch) {
  struct InFlight {
    std::vector<Pfn> pages;
    std::vector<uint64_t> addresses;
  };
  GuestMemory& mem = ports_.memory;
  Hypervisor& hv = *ports_.hypervisor;
  const uint64_t per_page = CmoPagesPerPage();
  Pages left = nr;        // not loaned yet
  Pages in_flight(0);     // of those, submitted and not answered
  std::deque<InFlight> flight;
  bool last = false;
  while (true) {
    while (!last && flight.size() < 2 && left - in_flight > Pages(0)) {
      const uint64_t want = std::min<uint64_t>(batch, static_cast<uint64_t>((left - in_flight).value()));
      InFlight b;
      while (b.pages.size() < want) {
        if (!hotplug_.Quiet()) break;
        const auto page = mem.AllocBalloonPage();
        if (!page) break;
        b.pages.push_back(*page);
      }
      last = b.pages.size() < want;
      if (b.pages.empty()) break;
      AddressesOf(b.pages, b.addresses);
      hv.SubmitBatch(papr::kPageSetLoaned, b.addresses);
      in_flight += Pages(static_cast<int64_t>(b.pages.size()));
      flight.push_back(std::move(b));
    }
    if (flight.empty()) break;
    InFlight b = std::move(flight.front());
    flight.pop_front();
    const Hypervisor::BatchResult r = hv.CompleteBatch();
    in_flight -= Pages(static_cast<int64_t>(b.pages.size()));
    const uint64_t whole = std::min<uint64_t>(r.rc == papr::kSuccess ? b.pages.size() : r.done / per_page, b.pages.size());
    for (uint64_t i = 0; i < whole; ++i) {
      TakeIntoBalloon(b.pages[i]);
      --left;
    }
    if (r.rc == papr::kSuccess) continue;
    ports_.log.Error(fmt::format("cmm: Can not set page to loaned. rc={}", r.rc));
    if (whole < b.pages.size()) {
      const uint64_t base = geometry_.Address(b.pages[whole]);
      for (uint64_t i = r.done % per_page; i-- > 0;) hv.PageInit(papr::kPageSetActive, base + i * cmo_page_size_);
    }
    // The batch sent after this one: the single-call loop never got that
    // far, so whatever of it was loaned is set active again, in reverse,
    // and its pages go back first (they were taken last).
    for (const InFlight& later : flight) {
      const Hypervisor::BatchResult lr = hv.CompleteBatch();
      for (uint64_t i = std::min<uint64_t>(lr.done, later.addresses.size()); i-- > 0;) {
        hv.PageInit(papr::kPageSetActive, later.addresses[i]);
      }
    }
    for (auto later = flight.rbegin(); later != flight.rend(); ++later) {
      for (uint64_t i = later->pages.size(); i-- > 0;) mem.FreePage(later->pages[i]);
    }
    for (uint64_t i = b.pages.size(); i-- > whole;) mem.FreePage(b.pages[i]);
    break;
  }
  Debug("End request with {} pages unfulfilled", left.value());
  return left;
}

// Gives back up to `batch` pages per call. A failure does not stop a
// deflate: as in the single-call loop, the failed page's CMO pages done so
// far are set loaned again, the page is freed anyway, and the call goes on
// from the next page.
Pages Controller::DeflateBatched(Pages nr, uint64_t batch) {
  Pages left = nr;
  Hypervisor& hv = *ports_.hypervisor;
  const uint64_t per_page = CmoPagesPerPage();
  std::vector<Pfn> pages;
  std::vector<uint64_t> addresses;
  while (left > Pages(0)) {
    pages.clear();
    while (pages.size() < batch && Pages(static_cast<int64_t>(pages.size())) < left) {
      const auto page = balloon_.Dequeue();
      if (!page) break;
      pages.push_back(*page);
    }
    if (pages.empty()) break;
    AddressesOf(pages, addresses);
    for (uint64_t from = 0; from < addresses.size();) {
      const std::span<const uint64_t> rest(addresses.data() + from, addresses.size() - from);
      const Hypervisor::BatchResult r = hv.PageInitBatch(papr::kPageSetActive, rest);
      if (r.rc == papr::kSuccess) break;
      const uint64_t failed = from + std::min<uint64_t>(r.done, rest.size() - 1);
      const uint64_t page_start = failed - failed % per_page;
      for (uint64_t i = failed; i-- > page_start;) hv.PageInit(papr::kPageSetLoaned, addresses[i]);
      from = page_start + per_page;
    }
    for (const Pfn p : pages) {
      GiveBack(p);
      --left;
    }
  }
  Debug("End request with {} pages unfulfilled", left.value());
  return left;
}

// ---- S6 / S11 / S12: notifiers ------------------------------------------

void Controller::OnOom(Pages& freed) {
  const Pages nr = geometry_.KbToPages(params_.oom_kb.load());
  Debug("OOM processing started");
  const Pages given = nr - Deflate(nr);
  loaned_target_.store(loaned_.load());
  freed += given;
  oom_freed_.fetch_add(given.value());
  Debug("OOM processing complete");
}

void Controller::OnReboot(RebootAction action) {
  if (action != RebootAction::kRestart) return;
  MutexLock lock(admin_mu_);
  StopThread();
  Deflate(loaned());
}

void Controller::OnMemoryEvent(MemoryAction action) {
  switch (action) {
    case MemoryAction::kGoingOffline:
      hotplug_.BeginRemove();
      break;
    case MemoryAction::kOffline:
    case MemoryAction::kCancelOffline:
      hotplug_.EndRemove();
      Debug("Memory offline operation complete.");
      break;
    case MemoryAction::kGoingOnline:
    case MemoryAction::kOnline:
    case MemoryAction::kCancelOnline:
      break;
  }
}

// ---- S13: balloon page migration ----------------------------------------

bool Controller::IsolatePage(Pfn page) { return balloon_.Isolate(page); }

void Controller::PutbackPage(Pfn page) { balloon_.Putback(page); }

int Controller::MigratePage(Pfn old_page, Pfn new_page) {
  if (!balloon_.IsIsolated(old_page)) return EINVAL;  // the caller must isolate first
  // Loan the new page first: if that fails nothing has changed.
  if (SetLoaned(new_page) != papr::kSuccess) {
    ports_.log.Error("cmm: Cannot set page to loaned.");
    return EBUSY;
  }
  GuestMemory& mem = ports_.memory;
  if (mem.ZoneOf(old_page) != mem.ZoneOf(new_page)) {
    mem.AdjustTotalram(old_page, Pages(1));
    mem.AdjustTotalram(new_page, Pages(-1));
  }
  balloon_.Replace(old_page, new_page);
  SetActive(old_page);  // errors ignored
  mem.FreePage(old_page);
  return 0;
}

// ---- S8: disable --------------------------------------------------------

int Controller::WriteDisable(std::string_view text) {
  const auto parsed = ktext::ParseDisable(text);
  if (!parsed) return parsed.error();
  const bool disable = *parsed;
  MutexLock lock(admin_mu_);
  if (disable && !disabled_.load()) {
    StopThread();
    Deflate(loaned());
  } else if (!disable && disabled_.load()) {
    const int rc = StartThread();
    if (rc != 0) return rc;
  }
  disabled_.store(disable);
  return 0;
}

std::vector<uint64_t> Controller::LoanedCmoAddresses() const {
  std::vector<uint64_t> out;
  if (!params_.simulate) AddressesOf(balloon_.Snapshot(), out);
  return out;
}

ControllerSnapshot Controller::Snapshot() const {
  ControllerSnapshot s;
  s.loaned = loaned();
  s.loaned_target = loaned_target();
  s.oom_freed = oom_freed();
  s.totalram = ports_.memory.Totalram();
  s.disabled = disabled();
  s.simulate = params_.simulate;
  s.hotplug_held = hotplug_.held();
  s.isolated = balloon_.isolated();
  return s;
}

}  // namespace cmm
