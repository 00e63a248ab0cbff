#include "guest/hv_client.h"

#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proto/channel.h"

namespace cmm::guest {

namespace {

constexpr auto kTimeout = std::chrono::seconds(5);

}  // namespace

tl::expected<std::unique_ptr<HvClient>, std::string> HvClient::Connect(const std::string& path,
                                                                      const proto::Register& registration, int memfd) {
  auto fd = proto::ConnectSeqpacket(path);
  if (!fd) return tl::unexpected(fd.error());
  auto fail = [&](std::string why) {
    close(*fd);
    return tl::unexpected(std::move(why));
  };
  if (auto sent = proto::Send(*fd, registration, memfd); !sent) return fail(sent.error());
  auto reply = proto::Receive(*fd, kTimeout);
  if (!reply) return fail(fmt::format("registration: {}", reply.error()));
  if (reply->fd >= 0) close(reply->fd);
  if (const auto* e = std::get_if<proto::Error>(&reply->message)) {
    return fail(fmt::format("the hypervisor refused the registration: {}", e->message));
  }
  const auto* terms = std::get_if<proto::Registered>(&reply->message);
  if (terms == nullptr) return fail("registration: unexpected reply");
  if (registration.page_size % terms->cmo_page_size != 0) {
    return fail(fmt::format("CMO page size {} does not divide the page size {}", terms->cmo_page_size,
                            registration.page_size));
  }
  return std::unique_ptr<HvClient>(new HvClient(*fd, *terms));
}

HvClient::~HvClient() {
  std::lock_guard lock(mu_);
  if (fd_ >= 0) close(fd_);
}

void HvClient::SetStatsSource(std::function<proto::Stats()> source) {
  std::lock_guard lock(mu_);
  source_ = std::move(source);
}

bool HvClient::connected() const {
  std::lock_guard lock(mu_);
  return fd_ >= 0;
}

tl::expected<proto::Message, std::string> HvClient::CallLocked(const proto::Message& m) {
  if (fd_ < 0) return tl::unexpected(std::string("not connected to the hypervisor"));
  auto fail = [this](std::string why) {
    spdlog::error("hypervisor connection lost: {}", why);
    close(fd_);
    fd_ = -1;
    return tl::unexpected(std::move(why));
  };
  if (auto sent = proto::Send(fd_, m); !sent) return fail(sent.error());
  auto reply = proto::Receive(fd_, kTimeout);
  if (!reply) return fail(reply.error());
  if (reply->fd >= 0) close(reply->fd);
  if (const auto* e = std::get_if<proto::Error>(&reply->message)) return fail(e->message);
  return std::move(reply->message);
}

papr::Rc HvClient::GetMpp(papr::MppData& out) {
  std::lock_guard lock(mu_);
  proto::GetMpp request;
  if (source_) request.stats = source_();
  auto reply = CallLocked(request);
  if (!reply) return papr::kHardware;
  const auto* mpp = std::get_if<proto::Mpp>(&*reply);
  if (mpp == nullptr) return papr::kHardware;
  if (mpp->rc == papr::kSuccess) out = mpp->data;
  return mpp->rc;
}

papr::Rc HvClient::PageInit(uint64_t flags, uint64_t address) {
  std::lock_guard lock(mu_);
  auto reply = CallLocked(proto::PageInit{flags, address});
  if (!reply) return papr::kHardware;
  const auto* rc = std::get_if<proto::PageInitRc>(&*reply);
  return rc != nullptr ? rc->rc : papr::kHardware;
}

}  // namespace cmm::guest
