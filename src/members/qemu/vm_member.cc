#include "members/qemu/vm_member.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "host/vm_memory.h"
#include "members/qemu/qmp_decode.h"
#include "members/virtio/unresponsive.h"

namespace cmm::hv {

namespace {

using json = nlohmann::json;
constexpr uint64_t kMiB = 1 << 20;

// The virtio-balloon device's QOM path: a named device under
// /machine/peripheral, else an anonymous one under /machine/peripheral-anon.
Result<std::string> FindBalloon(QmpClient& qmp, const std::function<std::chrono::milliseconds()>& left) {
  for (const char* dir : {"/machine/peripheral", "/machine/peripheral-anon"}) {
    auto list = qmp.Execute("qom-list", {{"path", dir}}, left());
    if (!list) {
      if (list.error().lost) return Fail(ErrorCode::kUnavailable, list.error().message);
      continue;
    }
    auto entries = DecodeQomList(*list);
    if (!entries) return Fail(ErrorCode::kInvalid, entries.error().message);
    for (const QomEntry& e : *entries) {
      if (e.type.starts_with("child<virtio-balloon")) return fmt::format("{}/{}", dir, e.name);
    }
  }
  return Fail(ErrorCode::kInvalid, "no virtio-balloon device");
}

// A QEMU that answers but cannot be driven is refused as it is (kInvalid);
// one that stops answering meanwhile is not there (kUnavailable).
ErrorCode CodeOf(const QmpError& e) { return e.lost ? ErrorCode::kUnavailable : ErrorCode::kInvalid; }

pid_t PeerPid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return 0;
  return cred.pid;
}

}  // namespace

Result<std::shared_ptr<VmMember>> VmMember::Attach(VmOptions o, LostHandler on_lost) {
  // The whole handshake has one deadline: a QEMU that answers slowly or
  // not at all is given up on then, whatever step it is at.
  const auto deadline = MemberClock::now() + o.attach_timeout;
  auto left = [deadline] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - MemberClock::now()));
  };
  auto qmp = QmpClient::Connect(o.qmp_path, left());
  if (!qmp) return Fail(ErrorCode::kUnavailable, qmp.error());
  o.attach_timeout = std::max(std::chrono::milliseconds(1), left());
  return Attach(std::move(o), std::move(*qmp), std::move(on_lost));
}

Result<std::shared_ptr<VmMember>> VmMember::Attach(VmOptions o, std::unique_ptr<QmpClient> client,
                                                   LostHandler on_lost) {
  const auto deadline = MemberClock::now() + o.attach_timeout;
  auto left = [deadline] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - MemberClock::now()));
  };
  QmpClient& q = *client;
  auto qemu_failed = [&](const QmpError& e, std::string what) {
    return Fail(CodeOf(e), fmt::format("QEMU at {}: {}{}", o.qmp_path, what, e.message));
  };
  auto balloon = q.Execute("query-balloon", json::object(), left());
  if (!balloon) {
    return Fail(CodeOf(balloon.error()),
                fmt::format("QEMU at {} has no balloon to drive: {} (start it with -device virtio-balloon-pci)",
                            o.qmp_path, balloon.error().message));
  }
  // Its type at once; its range once the RAM is known.
  if (auto a = UnsignedField(*balloon, "actual"); !a) {
    return Fail(ErrorCode::kInvalid, fmt::format("QEMU at {}: query-balloon: {}", o.qmp_path, a.error().message));
  }
  auto size = q.Execute("query-memory-size-summary", json::object(), left());
  if (!size) return qemu_failed(size.error(), "");
  const auto ram = DecodeMemorySize(*size);
  if (!ram) return Fail(ErrorCode::kInvalid, fmt::format("QEMU at {}: {}", o.qmp_path, ram.error().message));
  const auto actual = DecodeBalloonActual(*balloon, *ram);
  if (!actual) return Fail(ErrorCode::kInvalid, fmt::format("QEMU at {}: {}", o.qmp_path, actual.error().message));
  auto path = FindBalloon(q, left);
  if (!path) return tl::unexpected(path.error().Within("QEMU at " + o.qmp_path));
  const int64_t interval = std::max<int64_t>(1, o.period.count() / 1000);
  if (auto set = q.Execute("qom-set", {{"path", *path}, {"property", "guest-stats-polling-interval"},
                                       {"value", interval}}, left());
      !set) {
    return qemu_failed(set.error(), "cannot ask for guest stats: ");
  }
  const pid_t pid = o.pid != 0 ? o.pid : PeerPid(q.fd());
  if (pid <= 0) {
    return Fail(ErrorCode::kInvalid, fmt::format("QEMU at {}: cannot tell its process; give --pid", o.qmp_path));
  }
  if (kill(pid, 0) != 0) {
    return Fail(errno == ESRCH ? ErrorCode::kNotFound : ErrorCode::kRefused,
                fmt::format("process {}: {}", pid, std::strerror(errno)));
  }
  auto memfd = OpenGuestMemfd(pid, *ram);
  if (!memfd) spdlog::info("vm {}: {}; measuring the resident guest-RAM mapping", o.name, memfd.error().message);
  auto vm = std::shared_ptr<VmMember>(new VmMember(std::move(o), std::move(client), pid, *ram, *path,
                                                   memfd ? *memfd : -1, std::move(on_lost)));
  {
    MutexLock lock(vm->mu_);
    vm->follow_ = BalloonFollow(*actual);
  }
  vm->Measure();
  // spdlog's registry is made on first use: make it here, before the
  // follower thread logs, not in a race with this thread's next line.
  (void)spdlog::default_logger_raw();
  vm->thread_ = std::thread([raw = vm.get()] { raw->Follow(); });
  return vm;
}

VmMember::VmMember(VmOptions options, std::unique_ptr<QmpClient> qmp, pid_t pid, uint64_t ram,
                   std::string balloon_path, int memfd, LostHandler on_lost)
    : options_(std::move(options)),
      qmp_(std::move(qmp)),
      pid_(pid),
      ram_bytes_(ram),
      balloon_path_(std::move(balloon_path)),
      memfd_(memfd),
      version_(qmp_->version()),
      attached_(MemberClock::now()),
      on_lost_(std::move(on_lost)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  actual_moved_ = attached_;
}

VmMember::~VmMember() {
  stopping_.store(true);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
  if (memfd_ >= 0) close(memfd_);
}

void VmMember::Assign(const Assignment& a) {
  {
    MutexLock lock(mu_);
    if (AsUnsigned(a.target_loaned_bytes) == want_loaned_) return;
    want_loaned_ = AsUnsigned(a.target_loaned_bytes);
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

MemberState VmMember::Observe() const {
  MutexLock lock(mu_);
  MemberState s;
  s.ram_bytes = FromUnsigned<Bytes>(ram_bytes_);
  s.backing_bytes = FromUnsigned<Bytes>(backing_);
  s.loaned_bytes = follow_.loaned(ram_bytes_);
  s.stats = stats_;
  s.responsive = responsive_;
  s.note = note_;
  s.backing_source = memfd_ >= 0 ? "memfd" : "smaps";
  s.own_bytes = FromUnsigned<Bytes>(own_);
  s.pid = pid_;
  return s;
}

void VmMember::Measure() {
  uint64_t backing = 0, own = 0;
  if (memfd_ >= 0) {
    // Cheap each period: st_blocks, and QEMU's RSS less its shared memory.
    backing = AllocatedBytes(memfd_);
    if (const auto st = ReadStatusRss(pid_)) own = st->rss - std::min(st->rss, st->shmem);
  } else if (const auto smaps = ReadSmaps(pid_, ram_bytes_)) {
    backing = smaps->guest_resident;
    own = smaps->total_resident - std::min(smaps->total_resident, smaps->guest_resident);
  }
  MutexLock lock(mu_);
  backing_ = backing;
  own_ = own;
}

void VmMember::OnBalloon(uint64_t actual, MemberClock::time_point now) {
  MutexLock lock(mu_);
  if (actual == follow_.actual()) return;
  // Guest memory grew past what was asked: the guest deflated on OOM.
  if (const uint64_t taken_back = follow_.Seen(actual, now); taken_back > 0) {
    ++stats_.oom_events;
    oom_taken_back_ += taken_back;
  }
  actual_moved_ = now;
}

bool VmMember::Push() {
  uint64_t value;
  {
    MutexLock lock(mu_);
    // QEMU refuses 0; the guest keeps at least a page.
    value = std::max<uint64_t>(ram_bytes_ - std::min(want_loaned_, ram_bytes_), kMiB);
    if (value == follow_.asked()) return true;
  }
  auto r = qmp_->Execute("balloon", {{"value", value}});
  if (!r) {
    if (r.error().lost) return false;
    spdlog::warn("vm {}: balloon to {} MiB: {}", options_.name, value / kMiB, r.error().message);
    return true;
  }
  MutexLock lock(mu_);
  const auto now = MemberClock::now();
  follow_.Asked(value, now);
  actual_moved_ = now;
  return true;
}

bool VmMember::Tick(MemberClock::time_point now) {
  std::string bad;  // what QEMU said this period that makes no sense
  auto balloon = qmp_->Execute("query-balloon");
  if (!balloon && balloon.error().lost) return false;
  if (balloon) {
    if (const auto actual = DecodeBalloonActual(*balloon, ram_bytes_)) {
      OnBalloon(*actual, now);
    } else {
      bad = actual.error().message;
    }
  }
  auto reply = qmp_->Execute("qom-get", {{"path", balloon_path_}, {"property", "guest-stats"}});
  if (!reply && reply.error().lost) return false;
  const auto stats = reply ? DecodeGuestStats(*reply, ram_bytes_) : Result<GuestStats>(GuestStats{});
  if (!stats) bad = stats.error().message;
  Measure();
  MutexLock lock(mu_);
  if (!bad.empty() && bad != bad_reply_) spdlog::warn("vm {}: QEMU sent a bad reply: {}", options_.name, bad);
  bad_reply_ = std::move(bad);
  if (stats && stats->last_update != 0 && stats->last_update != stats_update_) {
    const uint64_t total = stats->total.value_or(0);
    const uint64_t available = stats->available.value_or(total);
    stats_.free_bytes = FromUnsigned<Bytes>(stats->free.value_or(0));
    stats_.cache_bytes = FromUnsigned<Bytes>(stats->disk_caches.value_or(0));
    stats_.used_bytes = FromUnsigned<Bytes>(total - std::min(total, available));
    stats_.taken = now;
    stats_.loaned_bytes = follow_.loaned(ram_bytes_);
    stats_.swapped_in = FromUnsigned<Bytes>(stats->swap_in.value_or(0));
    stats_.major_faults = stats->major_faults.value_or(0);
    stats_update_ = stats->last_update;
  }
  if (oom_taken_back_ > 0) {
    spdlog::warn("vm {}: the guest took back {} MiB on OOM (deflate-on-oom); {} OOM events in all", options_.name,
                 oom_taken_back_ / kMiB, stats_.oom_events);
    oom_taken_back_ = 0;
  }
  const BalloonWatch watch{options_.period, options_.stale_periods,
                           stats_.taken == MemberClock::time_point{} ? attached_ : stats_.taken, stats_update_ >= 0,
                           actual_moved_};
  std::string note = WhyUnresponsive(watch, follow_, now);
  if (!bad_reply_.empty()) AddReason(note, "QEMU sent a bad reply: " + bad_reply_);
  const bool responsive = note.empty();
  if (responsive != responsive_) {
    if (responsive) {
      spdlog::info("vm {}: responsive again", options_.name);
    } else {
      spdlog::warn("vm {}: unresponsive: {}; the policy counts on nothing from it", options_.name, note);
    }
  }
  responsive_ = responsive;
  note_ = std::move(note);
  return true;
}

void VmMember::HandleEvents() {
  for (const QmpEvent& e : qmp_->TakeEvents()) {
    if (e.name == "BALLOON_CHANGE") {
      if (const auto actual = DecodeBalloonActual(e.data, ram_bytes_)) {
        OnBalloon(*actual, MemberClock::now());
      } else {
        spdlog::warn("vm {}: QEMU sent a bad BALLOON_CHANGE: {}", options_.name, actual.error().message);
      }
    } else if (e.name == "SHUTDOWN") {
      spdlog::info("vm {}: QEMU is shutting down", options_.name);
    }
  }
}

void VmMember::Follow() {
  std::string why;
  try {
    FollowLoop();
    if (stopping_.load()) return;
    why = qmp_->lost_reason().empty() ? std::string("its follower stopped") : qmp_->lost_reason();
  } catch (const std::exception& e) {
    // Nothing a VM's side sends should get here; if it does, that VM
    // leaves with the reason and the hypervisor goes on.
    why = fmt::format("its follower failed: {}", Printable(e.what(), 200));
  }
  {
    MutexLock lock(mu_);
    lost_reason_ = why;
  }
  spdlog::warn("vm {}: {}; it leaves the pool", options_.name, why);
  if (on_lost_) on_lost_(*this);
  // Lost only once it has left: whoever sees lost() finds it out of the pool.
  lost_.store(true);
}

void VmMember::FollowLoop() {
  auto next = MemberClock::now();
  bool alive = true;
  while (alive && !stopping_.load()) {
    const auto now = MemberClock::now();
    if (now >= next) {
      alive = Tick(now);
      HandleEvents();
      next += options_.period;
      if (next < now) next = now + options_.period;
      continue;
    }
    pollfd fds[] = {{wake_fd_, POLLIN, 0}, {qmp_->fd(), POLLIN, 0}};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    if (poll(fds, 2, static_cast<int>(wait)) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) {
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof n);
      if (stopping_.load()) return;
      alive = Push();
    }
    if (alive && fds[1].revents != 0) alive = qmp_->ReadAvailable().has_value();
    HandleEvents();
  }
}

}  // namespace cmm::hv
