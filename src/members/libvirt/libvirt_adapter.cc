#include "members/libvirt/libvirt_adapter.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "host/vm_memory.h"
#include "members/libvirt/domain_terms.h"

namespace cmm::hv {

namespace {

std::string LastError(std::string_view what) {
  const char* m = virGetLastErrorMessage();
  return fmt::format("{}: {}", what, m != nullptr ? m : "libvirt said no");
}

// One domain through libvirt: its memory stats and its live balloon target.
class LibvirtDomain final : public DomainControl {
 public:
  LibvirtDomain(virDomainPtr dom, uint64_t ram) : dom_(dom), ram_(ram) {}
  ~LibvirtDomain() override { virDomainFree(dom_); }
  Result<DomainMemory> Memory() override {
    virDomainMemoryStatStruct raw[VIR_DOMAIN_MEMORY_STAT_NR];
    const int n = virDomainMemoryStats(dom_, raw, VIR_DOMAIN_MEMORY_STAT_NR, 0);
    if (n < 0) return Fail(ErrorCode::kUnavailable, LastError("memory stats"));
    std::vector<std::pair<int, uint64_t>> stats;
    for (int i = 0; i < n && i < VIR_DOMAIN_MEMORY_STAT_NR; ++i) stats.emplace_back(raw[i].tag, raw[i].val);
    return DecodeDomainMemory(stats, ram_);
  }
  Result<void> SetGuestMemory(uint64_t bytes) override {
    if (virDomainSetMemoryFlags(dom_, bytes >> 10, VIR_DOMAIN_AFFECT_LIVE) != 0) {
      return Fail(ErrorCode::kRefused, LastError(fmt::format("balloon to {} MiB", bytes >> 20)));
    }
    return {};
  }

 private:
  virDomainPtr dom_;
  const uint64_t ram_;
};

// The QEMU of a domain on the system connection, from libvirt's pid file.
pid_t DomainPid(const std::string& uri, const std::string& name) {
  if (uri != "qemu:///system") return 0;
  std::ifstream in("/run/libvirt/qemu/" + name + ".pid");
  long pid = 0;
  return in >> pid && pid > 0 ? static_cast<pid_t>(pid) : 0;
}

void SilenceLibvirt(void*, virErrorPtr) {}  // errors are said where they matter

}  // namespace

struct LibvirtAdapter::Connection {
  virConnectPtr conn = nullptr;
  int lifecycle_id = -1;
  int balloon_id = -1;
  int tick_id = -1;
  std::atomic<bool> stop{false};
};

namespace {

int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int, void* opaque) {
  auto* self = static_cast<LibvirtAdapter*>(opaque);
  const char* name = virDomainGetName(dom);
  if (name == nullptr) return 0;
  using H = LibvirtAdapter::Happened;
  switch (event) {
    case VIR_DOMAIN_EVENT_STARTED: self->Post({name, H::kRunning}); break;
    case VIR_DOMAIN_EVENT_STOPPED:
    case VIR_DOMAIN_EVENT_CRASHED: self->Post({name, H::kGone}); break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
    case VIR_DOMAIN_EVENT_PMSUSPENDED: self->Post({name, H::kPaused}); break;
    case VIR_DOMAIN_EVENT_RESUMED: self->Post({name, H::kResumed}); break;
    default: break;
  }
  return 0;
}

void OnBalloonChange(virConnectPtr, virDomainPtr dom, unsigned long long actual_kib, void* opaque) {
  const char* name = virDomainGetName(dom);
  if (name == nullptr) return;
  const uint64_t bytes = actual_kib > (UINT64_MAX >> 10) ? UINT64_MAX : actual_kib << 10;
  static_cast<LibvirtAdapter*>(opaque)->Post({name, LibvirtAdapter::Happened::kBalloon, bytes});
}

void OnClose(virConnectPtr, int, void* opaque) {
  static_cast<LibvirtAdapter*>(opaque)->Post({"", LibvirtAdapter::Happened::kConnectionLost});
}

}  // namespace

Result<void> LibvirtAdapter::Connect() {
  Connection& c = *conn_;
  c.conn = virConnectOpen(options_.uri.c_str());
  if (c.conn == nullptr) return Fail(ErrorCode::kUnavailable, LastError(fmt::format("libvirt at {}", options_.uri)));
  c.lifecycle_id = virConnectDomainEventRegisterAny(c.conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                    VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle), this, nullptr);
  c.balloon_id = virConnectDomainEventRegisterAny(c.conn, nullptr, VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE,
                                                  VIR_DOMAIN_EVENT_CALLBACK(OnBalloonChange), this, nullptr);
  const bool closing = virConnectRegisterCloseCallback(c.conn, OnClose, this, nullptr) == 0;
  // Keepalive: a daemon that dies is noticed even when nothing is asked.
  (void)virConnectSetKeepAlive(c.conn, 1, 3);
  if (c.lifecycle_id < 0 || c.balloon_id < 0 || !closing) {
    const auto e = Fail(ErrorCode::kUnavailable, LastError(fmt::format("libvirt at {}: events", options_.uri)));
    Disconnect();
    return e;
  }
  // The domains running now, then whatever the events say.
  virDomainPtr* doms = nullptr;
  const int n = virConnectListAllDomains(c.conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
  for (int i = 0; i < n; ++i) {
    if (const char* name = virDomainGetName(doms[i])) Post({name, Happened::kRunning});
    virDomainFree(doms[i]);
  }
  free(doms);
  connected_ = true;
  backoff_ = std::chrono::milliseconds(250);
  spdlog::info("libvirt: connected to {}; {} running domains", options_.uri, n < 0 ? 0 : n);
  return {};
}

void LibvirtAdapter::Disconnect() {
  Connection& c = *conn_;
  if (c.conn == nullptr) return;
  if (c.lifecycle_id >= 0) virConnectDomainEventDeregisterAny(c.conn, c.lifecycle_id);
  if (c.balloon_id >= 0) virConnectDomainEventDeregisterAny(c.conn, c.balloon_id);
  (void)virConnectUnregisterCloseCallback(c.conn, OnClose);
  virConnectClose(c.conn);
  c.conn = nullptr;
  c.lifecycle_id = c.balloon_id = -1;
  connected_ = false;
}

void LibvirtAdapter::Reconnect(MemberClock::time_point now) {
  if (connected_ || now < reconnect_at_) return;
  if (auto ok = Connect(); !ok) {
    reconnect_at_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(8000));
    return;
  }
  // Each member is bound anew when its kRunning comes (Adopt); those that
  // are not running any more leave once the listing is in.
  rebinding_.clear();
  for (const auto& [name, _] : members_) rebinding_.insert(name);
  // Skipped ones are looked at afresh from the listing: one gone meanwhile
  // takes its note with it.
  std::set<std::string> skipped;
  {
    MutexLock lock(mu_);
    skipped.swap(skipped_);
  }
  for (const std::string& name : skipped) pool_.Note("domain " + name, "");
}

Result<std::unique_ptr<LibvirtAdapter>> LibvirtAdapter::Start(Pool& pool, LibvirtOptions options) {
  static std::once_flag once;
  std::call_once(once, [] {
    virSetErrorFunc(nullptr, SilenceLibvirt);
    virEventRegisterDefaultImpl();
  });
  std::unique_ptr<LibvirtAdapter> a(new LibvirtAdapter(pool, std::move(options)));
  Connection& c = *a->conn_;
  // The loop wakes at least this often, to see that it should stop.
  c.tick_id = virEventAddTimeout(100, [](int, void*) {}, nullptr, nullptr);
  a->events_thread_ = std::thread([&c] {
    while (!c.stop.load()) {
      if (virEventRunDefaultImpl() < 0) break;
    }
  });
  if (auto ok = a->Connect(); !ok) return tl::unexpected(ok.error());
  (void)spdlog::default_logger_raw();
  a->follow_thread_ = std::thread([raw = a.get()] { raw->Follow(); });
  return a;
}

LibvirtAdapter::LibvirtAdapter(Pool& pool, LibvirtOptions options)
    : pool_(pool), options_(std::move(options)), conn_(std::make_unique<Connection>()) {}

LibvirtAdapter::~LibvirtAdapter() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  if (follow_thread_.joinable()) follow_thread_.join();
  for (const auto& [name, m] : members_) pool_.Remove(*m);
  members_.clear();
  Disconnect();
  Connection& c = *conn_;
  c.stop.store(true);
  if (events_thread_.joinable()) events_thread_.join();
  if (c.tick_id >= 0) virEventRemoveTimeout(c.tick_id);
}

std::set<std::string> LibvirtAdapter::skipped() const {
  MutexLock lock(mu_);
  return skipped_;
}

void LibvirtAdapter::TermsChanged(const std::string& name, const MemberSettings& terms) {
  Event e{name, Happened::kTerms};
  e.terms = terms;
  Post(std::move(e));
}

void LibvirtAdapter::WriteTerms(const std::string& name, const MemberSettings& terms) {
  const auto said = said_.find(name);
  if (said == said_.end()) return;  // not one of its domains
  const MemberSettings& was = said->second;
  if (was.weight == terms.weight && was.min_bytes == terms.min_bytes && was.max_bytes == terms.max_bytes) return;
  virDomainPtr dom = connected_ ? virDomainLookupByName(conn_->conn, name.c_str()) : nullptr;
  if (dom == nullptr) return;
  const std::string xml = DomainTermsXml(terms, true);
  const std::string ns(kTermsNamespace), prefix(kTermsPrefix);
  unsigned flags = VIR_DOMAIN_AFFECT_LIVE;
  if (virDomainIsPersistent(dom) == 1) flags |= VIR_DOMAIN_AFFECT_CONFIG;
  if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml.c_str(), prefix.c_str(), ns.c_str(), flags) != 0) {
    spdlog::warn("domain {}: {}", name, LastError("cannot keep its terms in its <metadata>"));
  } else {
    said->second = terms;
    spdlog::info("domain {}: its terms are kept in its <metadata>{}", name,
                 (flags & VIR_DOMAIN_AFFECT_CONFIG) != 0 ? " (live and persistent)" : " (live: it is transient)");
  }
  virDomainFree(dom);
}

void LibvirtAdapter::Post(Event e) {
  {
    MutexLock lock(mu_);
    events_.push_back(std::move(e));
  }
  wake_.NotifyAll();
}

void LibvirtAdapter::Adopt(const std::string& name) {
  if (!connected_) return;
  virDomainPtr dom = virDomainLookupByName(conn_->conn, name.c_str());
  if (dom == nullptr) return;  // gone meanwhile
  if (const auto it = members_.find(name); it != members_.end()) {
    // Back after libvirt was away: the same domain through the new
    // connection, its loan as it is.
    if (rebinding_.erase(name) > 0) {
      virDomainInfo info{};
      const bool paused = virDomainGetInfo(dom, &info) == 0 && info.state == VIR_DOMAIN_PAUSED;
      it->second->Rebind(std::make_unique<LibvirtDomain>(dom, it->second->options().ram_bytes));
      it->second->SetPaused(paused);
      it->second->SetAway(false);
      spdlog::info("domain {}: managed again through {}", name, options_.uri);
      return;
    }
    virDomainFree(dom);
    return;
  }
  virDomainInfo info{};
  char* xml = virDomainGetXMLDesc(dom, 0);
  if (virDomainGetInfo(dom, &info) != 0 || xml == nullptr) {
    spdlog::warn("domain {}: {}", name, LastError("cannot be read"));
    free(xml);
    virDomainFree(dom);
    return;
  }
  const std::string desc(xml);
  free(xml);
  if (desc.find("<memballoon") == std::string::npos || desc.find("<memballoon model='none'") != std::string::npos) {
    bool first;
    {
      MutexLock lock(mu_);
      first = skipped_.insert(name).second;
    }
    if (first) {
      spdlog::info("domain {}: skipped: it has no balloon (<memballoon model='none'/>)", name);
      pool_.Note("domain " + name,
                 fmt::format("domain {} is not managed: it has no balloon (<memballoon model='none'/>)", name));
    }
    virDomainFree(dom);
    return;
  }
  // The operator's terms, kept with the domain.
  MemberSettings settings{};
  bool manage = !options_.tagged_only;
  const std::string ns(kTermsNamespace);
  if (char* said = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, ns.c_str(), VIR_DOMAIN_AFFECT_LIVE)) {
    const auto t = ParseDomainTerms(said, name, Bytes(static_cast<int64_t>(info.maxMem) << 10));
    free(said);
    if (!t) {
      spdlog::warn("{}; it is managed on the defaults", t.error().message);
    } else {
      settings.weight = t->weight.value_or(0);
      settings.min_bytes = t->min_bytes.value_or(Bytes(0));
      settings.max_bytes = t->max_bytes.value_or(Bytes(0));
      if (t->manage) manage = *t->manage;
    }
  }
  if (!manage) {
    bool first;
    {
      MutexLock lock(mu_);
      first = skipped_.insert(name).second;
    }
    if (first) {
      spdlog::info("domain {}: not managed: {}", name,
                   options_.tagged_only ? "its <metadata> does not say manage=\"yes\" (--libvirt-select tagged)"
                                        : "its <metadata> says manage=\"no\"");
    }
    virDomainFree(dom);
    return;
  }
  // Guest stats every period (at least a second), unless it has its own.
  if (desc.find("<stats period=") == std::string::npos) {
    const int seconds = static_cast<int>(std::max<int64_t>(1, options_.period.count() / 1000));
    if (virDomainSetMemoryStatsPeriod(dom, seconds, VIR_DOMAIN_AFFECT_LIVE) != 0) {
      spdlog::warn("domain {}: {}", name, LastError("cannot ask for guest stats"));
    }
  }
  DomainOptions o;
  o.name = name;
  o.uri = options_.uri;
  o.ram_bytes = static_cast<uint64_t>(info.maxMem) << 10;
  o.pid = DomainPid(options_.uri, name);
  o.period = options_.period;
  o.backing_source = o.pid <= 0 ? "none" : "smaps";
  auto control = std::make_unique<LibvirtDomain>(dom, o.ram_bytes);
  // Its loan as it is: the balloon where libvirt says it is now.
  if (auto m = control->Memory()) o.actual_bytes = m->actual_bytes;
  // The host memory behind its RAM: the guest-RAM memfd of its QEMU, else
  // the resident part of the guest-RAM mapping.
  std::shared_ptr<int> memfd;
  if (o.pid > 0) {
    if (auto fd = OpenGuestMemfd(o.pid, o.ram_bytes)) {
      memfd = std::shared_ptr<int>(new int(*fd), [](int* p) {
        close(*p);
        delete p;
      });
      o.backing_source = "memfd";
    }
  }
  DomainMember::Measure measure = [memfd, pid = o.pid, ram = o.ram_bytes]() -> std::pair<uint64_t, uint64_t> {
    if (pid <= 0) return {0, 0};
    if (memfd) {
      const auto st = ReadStatusRss(pid);
      return {AllocatedBytes(*memfd), st ? st->rss - std::min(st->rss, st->shmem) : 0};
    }
    const auto smaps = ReadSmaps(pid, ram);
    if (!smaps) return {0, 0};
    return {smaps->guest_resident, smaps->total_resident - std::min(smaps->total_resident, smaps->guest_resident)};
  };
  auto member = std::make_shared<DomainMember>(
      o, std::move(control),
      [this] {
        {
          MutexLock lock(mu_);
          push_ = true;
        }
        wake_.NotifyAll();
      },
      std::move(measure), MemberClock::now());
  member->Tick(MemberClock::now());
  if (info.state == VIR_DOMAIN_PAUSED) member->SetPaused(true);
  said_[name] = settings;
  if (auto added = pool_.Add(member, settings); !added) {
    said_.erase(name);
    spdlog::warn("domain {}: not in the pool: {}", name, added.error().message);
    return;
  }
  spdlog::info("domain {}: joined from {} ({} MiB of RAM, QEMU pid {}, backing from {})", name, options_.uri,
               o.ram_bytes >> 20, o.pid, memfd ? "its memfd" : "smaps");
  members_.emplace(name, std::move(member));
}

void LibvirtAdapter::Leave(const std::string& name) {
  const auto it = members_.find(name);
  if (it == members_.end()) {
    {
      MutexLock lock(mu_);
      skipped_.erase(name);
    }
    pool_.Note("domain " + name, "");
    return;
  }
  pool_.Remove(*it->second);
  members_.erase(it);
  said_.erase(name);
}

void LibvirtAdapter::Follow() {
  auto next = MemberClock::now();
  for (;;) {
    std::deque<Event> events;
    bool push;
    {
      MutexLock lock(mu_);
      while (!stopping_ && events_.empty() && !push_ && MemberClock::now() < next) wake_.WaitUntil(lock, next);
      if (stopping_) return;
      events.swap(events_);
      push = std::exchange(push_, false);
    }
    const auto now = MemberClock::now();
    const bool was_connected = connected_;
    Reconnect(now);
    for (const Event& e : events) {
      if (e.what == Happened::kConnectionLost) {
        if (!connected_) continue;
        spdlog::warn("libvirt: the connection to {} is lost; its domains keep their loans, nothing is asked of them "
                     "until it is back",
                     options_.uri);
        Disconnect();
        for (const auto& [_, m] : members_) m->SetAway(true);
        reconnect_at_ = now + backoff_;
        continue;
      }
      if (!connected_) continue;
      const auto it = members_.find(e.name);
      switch (e.what) {
        case Happened::kRunning: Adopt(e.name); break;
        case Happened::kGone: Leave(e.name); break;
        case Happened::kPaused:
          if (it != members_.end()) it->second->SetPaused(true);
          break;
        case Happened::kResumed:
          if (it != members_.end()) it->second->SetPaused(false);
          Adopt(e.name);  // a domain resumed after an incoming migration is new here
          break;
        case Happened::kBalloon:
          if (it != members_.end()) it->second->OnBalloonEvent(e.actual_bytes, e.posted, now);
          break;
        case Happened::kConnectionLost: break;  // taken above
        case Happened::kTerms: WriteTerms(e.name, e.terms); break;
      }
    }
    // Reconnected: the listing's kRunning events were all taken above; a
    // member that none named is not running any more.
    if (!was_connected && connected_ && !rebinding_.empty()) {
      std::deque<Event> listed;
      {
        MutexLock lock(mu_);
        listed.swap(events_);
      }
      for (const Event& e : listed) {
        if (e.what == Happened::kRunning) Adopt(e.name);
      }
      for (const std::string& name : std::set<std::string>(rebinding_)) {
        spdlog::info("domain {}: not running after libvirt came back", name);
        Leave(name);
      }
      rebinding_.clear();
      for (const Event& e : listed) {
        if (e.what != Happened::kRunning) Post(e);
      }
    }
    if (push) {
      for (const auto& [_, m] : members_) m->Push(now);
    }
    if (now >= next) {
      for (const auto& [_, m] : members_) m->Tick(now);
      next += options_.period;
      if (next < now) next = now + options_.period;
    }
  }
}

}  // namespace cmm::hv
