#include "hv/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proto/channel.h"

namespace cmm::hv {

namespace {

// poll() said the connection is readable: take the packet without waiting.
constexpr auto kNoWait = std::chrono::milliseconds(0);

struct Connection {
  std::shared_ptr<HvPartition> partition;  // null until registered
  bool batch = false;
};

// Handles one message; false: drop the connection.
bool Handle(Pool& pool, int fd, Connection& c, proto::Received in, std::chrono::steady_clock::time_point arrived) {
  auto refuse = [&](uint32_t code, const std::string& why) {
    spdlog::warn("partition {}: {}", c.partition ? c.partition->config().name : "(unregistered)", why);
    (void)proto::Send(fd, proto::Error{code, why});
    return false;
  };
  if (!c.partition) {
    const auto* reg = std::get_if<proto::Register>(&in.message);
    if (reg == nullptr) {
      if (in.fd >= 0) close(in.fd);
      return refuse(EPROTO, "the first message must be a registration");
    }
    if (in.fd < 0) return refuse(EINVAL, "registration without the guest RAM memfd");
    auto p = pool.Register(*reg, in.fd);
    if (!p) return refuse(p.error().code, p.error().message);
    c.partition = *p;
    const proto::Registered terms = pool.Terms(*reg);
    c.batch = (terms.caps & proto::kCapBatch) != 0;
    return proto::Send(fd, terms).has_value();
  }
  if (in.fd >= 0) {
    close(in.fd);
    return refuse(EPROTO, "unexpected file descriptor");
  }
  HvPartition& p = *c.partition;
  // Each answered hcall is counted with its code and the time to its reply.
  auto reply = [&](Hcall call, papr::Rc rc, const proto::Message& m) {
    const bool sent = proto::Send(fd, m).has_value();
    pool.hcall_stats().Record(call, rc, std::chrono::steady_clock::now() - arrived);
    return sent;
  };
  if (const auto* m = std::get_if<proto::GetMpp>(&in.message)) {
    p.Report(m->stats);
    return reply(Hcall::kGetMpp, papr::kSuccess, proto::Mpp{papr::kSuccess, pool.Mpp(p)});
  }
  if (const auto* m = std::get_if<proto::PageInit>(&in.message)) {
    const papr::Rc rc = p.PageInit(m->flags, m->address);
    return reply(Hcall::kPageInit, rc, proto::PageInitRc{rc});
  }
  if (const auto* m = std::get_if<proto::PageInitBatch>(&in.message)) {
    if (!c.batch) return refuse(EPROTO, "batched page-state call without the capability");
    const proto::PageInitBatchRc r = p.PageInitBatch(m->flags, m->addresses);
    return reply(Hcall::kPageInitBatch, r.rc, r);
  }
  return refuse(EPROTO, "unexpected message from a partition");
}

}  // namespace

tl::expected<std::unique_ptr<HvServer>, std::string> HvServer::Start(const std::string& path, Pool& pool,
                                                                     std::chrono::milliseconds period) {
  auto fd = proto::ListenSeqpacket(path);
  if (!fd) return tl::unexpected(fd.error());
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(*fd);
    return tl::unexpected(fmt::format("eventfd: {}", std::strerror(errno)));
  }
  auto s = std::unique_ptr<HvServer>(new HvServer(path, pool, *fd, wake, period));
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  return s;
}

HvServer::HvServer(std::string path, Pool& pool, int listen_fd, int wake_fd, std::chrono::milliseconds period)
    : path_(std::move(path)), pool_(pool), listen_fd_(listen_fd), wake_fd_(wake_fd), period_(period) {}

HvServer::~HvServer() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void HvServer::Run() {
  std::map<int, Connection> conns;
  auto drop = [&](int fd) {
    if (auto it = conns.find(fd); it != conns.end()) {
      if (it->second.partition) pool_.Unregister(it->second.partition);
      conns.erase(it);
    }
    close(fd);
  };
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next) {
      pool_.Rebalance();
      next = now + period_;
    }
    std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& [fd, c] : conns) fds.push_back({fd, POLLIN, 0});
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    const int n = poll(fds.data(), fds.size(), static_cast<int>(wait));
    if (n < 0 && errno != EINTR) {
      spdlog::error("hypervisor: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) conns.emplace(fd, Connection{});
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      const auto arrived = std::chrono::steady_clock::now();
      auto in = proto::Receive(fd, kNoWait);
      if (!in) {
        if (in.error() != "the peer closed the connection") {
          (void)proto::Send(fd, proto::Error{EPROTO, in.error()});
          spdlog::warn("hypervisor: dropping a connection: {}", in.error());
        }
        drop(fd);
        continue;
      }
      if (!Handle(pool_, fd, conns[fd], std::move(*in), arrived)) drop(fd);
    }
  }
  for (auto& [fd, c] : conns) {
    if (c.partition) pool_.Unregister(c.partition);
    close(fd);
  }
}

}  // namespace cmm::hv
