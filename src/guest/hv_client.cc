#include "guest/hv_client.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proto/channel.h"

namespace cmm::guest {

namespace {

constexpr auto kTimeout = std::chrono::seconds(5);
constexpr auto kFirstBackoff = std::chrono::milliseconds(250);
constexpr auto kMaxBackoff = std::chrono::seconds(8);

// Connects and registers; the fd and the hypervisor's terms.
Result<std::pair<int, proto::Registered>> Register(const std::string& path, const proto::Register& registration,
                                                   int memfd) {
  auto fd = proto::ConnectSeqpacket(path);
  if (!fd) return tl::unexpected(fd.error());
  auto fail = [&](ErrorCode code, std::string why) {
    close(*fd);
    return Fail(code, std::move(why));
  };
  if (auto sent = proto::Send(*fd, registration, memfd); !sent) return fail(sent.error().code, sent.error().message);
  auto reply = proto::Receive(*fd, kTimeout);
  if (!reply) return fail(reply.error().code, fmt::format("registration: {}", reply.error().message));
  if (reply->fd >= 0) close(reply->fd);
  if (const auto* e = std::get_if<proto::Error>(&reply->message)) {
    return fail(e->code == EEXIST ? ErrorCode::kExists : ErrorCode::kRefused,
                fmt::format("the hypervisor refused the registration: {}", e->message));
  }
  const auto* terms = std::get_if<proto::Registered>(&reply->message);
  if (terms == nullptr) return fail(ErrorCode::kProtocol, "registration: unexpected reply");
  if (terms->cmo_page_size == 0 || registration.page_size % terms->cmo_page_size != 0) {
    return fail(ErrorCode::kProtocol, fmt::format("CMO page size {} does not divide the page size {}",
                                                  terms->cmo_page_size, registration.page_size));
  }
  // Calls then wait in recvmsg itself: one system call per reply.
  if (auto set = proto::SetReceiveTimeout(*fd, kTimeout); !set) return fail(set.error().code, set.error().message);
  return std::make_pair(*fd, *terms);
}

}  // namespace

Result<std::unique_ptr<HvClient>> HvClient::Connect(const std::string& path, const proto::Register& registration,
                                                    int memfd) {
  auto r = Register(path, registration, memfd);
  if (!r) return tl::unexpected(r.error());
  return std::unique_ptr<HvClient>(new HvClient(path, registration, memfd, r->first, r->second));
}

HvClient::HvClient(std::string path, proto::Register registration, int memfd, int fd, proto::Registered terms)
    : path_(std::move(path)),
      registration_(std::move(registration)),
      memfd_(memfd),
      terms_(terms),
      fd_(fd),
      caps_(terms.caps),
      max_batch_(terms.max_batch) {}

HvClient::~HvClient() {
  MutexLock lock(mu_);
  if (fd_ >= 0) close(fd_);
}

void HvClient::SetStatsSource(std::function<proto::Stats()> source) {
  MutexLock lock(mu_);
  stats_source_ = std::move(source);
}

void HvClient::SetLoanedSource(std::function<std::vector<uint64_t>()> source) {
  MutexLock lock(mu_);
  loaned_source_ = std::move(source);
}

bool HvClient::connected() const {
  MutexLock lock(mu_);
  return fd_ >= 0;
}

uint64_t HvClient::reconnects() const {
  MutexLock lock(mu_);
  return reconnects_;
}

uint64_t HvClient::MaxBatch() const {
  MutexLock lock(mu_);
  return (caps_ & proto::kCapBatch) != 0 ? max_batch_ : 0;
}

void HvClient::DropLocked(const std::string& why) {
  spdlog::error("hypervisor connection lost: {}", why);
  close(fd_);
  fd_ = -1;
  backoff_ = kFirstBackoff;
  next_attempt_ = SteadyClock::now() + backoff_;
  // Their answers went with the connection.
  for (Submitted& s : submitted_) {
    if (!s.awaiting) continue;
    s.awaiting = false;
    s.result = {0, papr::kHardware};
  }
}

Result<proto::Message> HvClient::ReceiveLocked() {
  if (fd_ < 0) return Fail(ErrorCode::kUnavailable, "not connected to the hypervisor");
  auto fail = [this](Error why) REQUIRES(mu_) {
    DropLocked(why.message);
    return tl::unexpected(std::move(why));
  };
  auto reply = proto::Receive(fd_, proto::kSocketTimeout);
  if (!reply) return fail(reply.error());
  if (reply->fd >= 0) close(reply->fd);
  if (const auto* e = std::get_if<proto::Error>(&reply->message)) {
    return fail(Error{CodeOfErrno(static_cast<int>(e->code)), e->message});
  }
  return std::move(reply->message);
}

Result<proto::Message> HvClient::CallLocked(const proto::Message& m) {
  CollectLocked();
  if (fd_ < 0) return Fail(ErrorCode::kUnavailable, "not connected to the hypervisor");
  if (auto sent = proto::Send(fd_, m); !sent) {
    DropLocked(sent.error().message);
    return tl::unexpected(sent.error());
  }
  return ReceiveLocked();
}

namespace {

// A batch's answer; the hypervisor is not trusted to count past what it was sent.
Hypervisor::BatchResult BatchResultOf(const Result<proto::Message>& reply, uint64_t n) {
  Hypervisor::BatchResult out{0, papr::kHardware};
  const auto* r = reply ? std::get_if<proto::PageInitBatchRc>(&*reply) : nullptr;
  if (r == nullptr) return out;
  out.done = std::min<uint64_t>(r->done, n);
  out.rc = r->rc;
  if (out.rc == papr::kSuccess && out.done != n) out.rc = papr::kHardware;
  return out;
}

}  // namespace

void HvClient::CollectLocked() {
  for (Submitted& s : submitted_) {
    if (!s.awaiting) continue;
    s.awaiting = false;
    s.result = BatchResultOf(ReceiveLocked(), s.n);
  }
}

void HvClient::ReconnectLocked() {
  if (SteadyClock::now() < next_attempt_) return;
  auto retry_later = [this](const std::string& why) REQUIRES(mu_) {
    spdlog::warn("hypervisor at {}: {}; next attempt in {} ms", path_, why,
                 std::chrono::duration_cast<std::chrono::milliseconds>(backoff_).count());
    next_attempt_ = SteadyClock::now() + backoff_;
    backoff_ = std::min<SteadyClock::duration>(backoff_ * 2, kMaxBackoff);
  };
  auto r = Register(path_, registration_, memfd_);
  if (!r) return retry_later(r.error().message);
  if (r->second.cmo_page_size != terms_.cmo_page_size) {
    close(r->first);
    return retry_later(fmt::format("the CMO page size changed from {} to {}", terms_.cmo_page_size,
                                   r->second.cmo_page_size));
  }
  fd_ = r->first;
  caps_ = r->second.caps;
  max_batch_ = r->second.max_batch;
  // The restarted hypervisor knows nothing of our balloon: loan its pages again.
  const std::vector<uint64_t> loaned = loaned_source_ ? loaned_source_() : std::vector<uint64_t>{};
  const size_t step = (caps_ & proto::kCapBatch) != 0 ? max_batch_ : 1;
  for (size_t i = 0; i < loaned.size(); i += step) {
    const size_t n = std::min(step, loaned.size() - i);
    proto::Message m = proto::PageInit{papr::kPageSetLoaned, loaned[i]};
    if (step > 1) m = proto::PageInitBatch{papr::kPageSetLoaned, {loaned.begin() + i, loaned.begin() + i + n}};
    auto reply = CallLocked(m);
    if (!reply) return retry_later("re-loaning the balloon's pages failed");
    papr::Rc rc = papr::kHardware;
    if (const auto* b = std::get_if<proto::PageInitBatchRc>(&*reply)) rc = b->done == n ? b->rc : papr::kHardware;
    if (const auto* s = std::get_if<proto::PageInitRc>(&*reply)) rc = s->rc;
    if (rc != papr::kSuccess) {
      DropLocked(fmt::format("the hypervisor refused a page of the balloon (rc={})", rc));
      return retry_later("re-loaning the balloon's pages failed");
    }
  }
  ++reconnects_;
  backoff_ = kFirstBackoff;
  spdlog::info("registered again with the hypervisor at {}; {} loaned CMO pages handed back to it", path_,
               loaned.size());
}

papr::Rc HvClient::GetMpp(papr::MppData& out) {
  MutexLock lock(mu_);
  if (fd_ < 0) ReconnectLocked();
  proto::GetMpp request;
  if (stats_source_) request.stats = stats_source_();
  auto reply = CallLocked(request);
  if (!reply) return papr::kHardware;
  const auto* mpp = std::get_if<proto::Mpp>(&*reply);
  if (mpp == nullptr) return papr::kHardware;
  if (mpp->rc == papr::kSuccess) out = mpp->data;
  return mpp->rc;
}

papr::Rc HvClient::PageInit(uint64_t flags, uint64_t address) {
  MutexLock lock(mu_);
  auto reply = CallLocked(proto::PageInit{flags, address});
  if (!reply) return papr::kHardware;
  const auto* rc = std::get_if<proto::PageInitRc>(&*reply);
  return rc != nullptr ? rc->rc : papr::kHardware;
}

Hypervisor::BatchResult HvClient::PageInitBatch(uint64_t flags, std::span<const uint64_t> addresses) {
  MutexLock lock(mu_);
  return PageInitBatchLocked(flags, addresses);
}

Hypervisor::BatchResult HvClient::PageInitBatchLocked(uint64_t flags, std::span<const uint64_t> addresses) {
  if (!BatchOfferedLocked(addresses.size())) {
    // Not offered (any more): one call per page, same semantics.
    BatchResult out{0, papr::kHardware};
    for (const uint64_t a : addresses) {
      auto reply = CallLocked(proto::PageInit{flags, a});
      const auto* rc = reply ? std::get_if<proto::PageInitRc>(&*reply) : nullptr;
      out.rc = rc != nullptr ? rc->rc : papr::kHardware;
      if (out.rc != papr::kSuccess) return out;
      ++out.done;
    }
    return out;
  }
  return BatchResultOf(CallLocked(proto::PageInitBatch{flags, {addresses.begin(), addresses.end()}}), addresses.size());
}

bool HvClient::BatchOfferedLocked(size_t n) const {
  return (caps_ & proto::kCapBatch) != 0 && n != 0 && n <= max_batch_;
}

void HvClient::SubmitBatch(uint64_t flags, std::span<const uint64_t> addresses) {
  MutexLock lock(mu_);
  if (!BatchOfferedLocked(addresses.size()) || fd_ < 0) {
    // Done now, answered in its turn.
    const BatchResult now = PageInitBatchLocked(flags, addresses);
    submitted_.push_back({addresses.size(), false, now});
    return;
  }
  if (auto sent = proto::Send(fd_, proto::PageInitBatch{flags, {addresses.begin(), addresses.end()}}); !sent) {
    DropLocked(sent.error().message);
    submitted_.push_back({addresses.size(), false, {0, papr::kHardware}});
    return;
  }
  submitted_.push_back({addresses.size(), true, {}});
}

Hypervisor::BatchResult HvClient::CompleteBatch() {
  MutexLock lock(mu_);
  if (submitted_.empty()) return {0, papr::kHardware};
  if (submitted_.front().awaiting) {
    submitted_.front().awaiting = false;
    const auto reply = ReceiveLocked();  // a failure drops the connection, failing the later ones too
    submitted_.front().result = BatchResultOf(reply, submitted_.front().n);
  }
  const BatchResult r = submitted_.front().result;
  submitted_.pop_front();
  return r;
}

}  // namespace cmm::guest
