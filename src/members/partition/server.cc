#include "members/partition/server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proto/channel.h"

namespace cmm::hv {

namespace {

// A refusal as the wire says it: the code's errno and the message.
proto::Error WireError(const Error& e) { return {static_cast<uint32_t>(ErrnoOf(e.code)), e.message}; }

}  // namespace

struct HvServer::Connection {
  std::shared_ptr<HvPartition> partition;  // null until registered
  bool batch = false;
};

tl::expected<std::shared_ptr<HvPartition>, proto::Error> HvServer::Register(const proto::Register& r, int memfd) {
  if (r.page_size % options_.cmo_page_size != 0) {
    close(memfd);
    return tl::unexpected(proto::Error{EINVAL, fmt::format("page size {} is not a multiple of the CMO page size {}",
                                                           r.page_size, options_.cmo_page_size)});
  }
  auto backing = MemfdBacking(memfd, r.ram_bytes);
  if (!backing) return tl::unexpected(WireError(backing.error()));
  auto p = std::make_shared<HvPartition>(r, options_.cmo_page_size, std::move(*backing), options_.faults);
  const MemberSettings settings{r.weight, FromUnsigned<Bytes>(r.min_bytes), FromUnsigned<Bytes>(r.max_bytes)};
  if (auto added = pool_.Add(p, settings); !added) {
    return tl::unexpected(WireError(added.error()));
  }
  return p;
}

bool HvServer::Handle(int fd, Connection& c, proto::Received in, std::chrono::steady_clock::time_point arrived) {
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
    auto p = Register(*reg, in.fd);
    if (!p) return refuse(p.error().code, p.error().message);
    c.partition = *p;
    c.batch = options_.batch && reg->want_batch;
    const proto::Registered terms{options_.cmo_page_size, c.batch ? proto::kCapBatch : 0u,
                                  c.batch ? proto::kMaxBatch : 0u};
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
    hcall_stats_.Record(call, rc, std::chrono::steady_clock::now() - arrived);
    return sent;
  };
  if (const auto* m = std::get_if<proto::GetMpp>(&in.message)) {
    return reply(Hcall::kGetMpp, papr::kSuccess, proto::Mpp{papr::kSuccess, p.GetMpp(m->stats)});
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

Result<std::unique_ptr<HvServer>> HvServer::Start(const std::string& path, Pool& pool, HcallOptions options,
                                                  ServerLimits limits) {
  auto fd = proto::ListenSeqpacket(path);
  if (!fd) return tl::unexpected(fd.error());
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(*fd);
    return Fail(ErrorCode::kIo, fmt::format("eventfd: {}", std::strerror(errno)));
  }
  auto s = std::unique_ptr<HvServer>(new HvServer(path, pool, *fd, wake, options, limits));
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  return s;
}

HvServer::HvServer(std::string path, Pool& pool, int listen_fd, int wake_fd, HcallOptions options,
                   ServerLimits limits)
    : path_(std::move(path)),
      pool_(pool),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      options_(options),
      limits_(limits) {}

HvServer::~HvServer() {
  stopping_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  unlink(path_.c_str());
}

void HvServer::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

// One partition's connection, on its own thread: it waits in recvmsg and
// answers at once, so an hcall costs one receive and one send, and one
// partition's long batch never holds up another's calls.
void HvServer::Serve(Session& s) {
  Connection c;
  // Until it registers, a connection gets a deadline; then it may idle.
  bool deadline = proto::SetReceiveTimeout(s.fd, limits_.registration_timeout).has_value();
  for (;;) {
    auto in = proto::Receive(s.fd, proto::kSocketTimeout);
    if (!in && !c.partition && in.error().code == ErrorCode::kTimedOut) {
      (void)proto::Send(s.fd, proto::Error{ETIMEDOUT, fmt::format("no registration within {} ms",
                                                                  limits_.registration_timeout.count())});
      spdlog::warn("hypervisor: dropping a connection that did not register");
      break;
    }
    if (!in) {
      // Stopping shuts the socket down under the receive: not a peer's fault.
      if (in.error().code != ErrorCode::kUnavailable && !stopping_.load()) {
        (void)proto::Send(s.fd, proto::Error{EPROTO, in.error().message});
        spdlog::warn("hypervisor: dropping a connection: {}", in.error().message);
      }
      break;
    }
    bool go_on = false;
    try {
      go_on = Handle(s.fd, c, std::move(*in), std::chrono::steady_clock::now());
    } catch (const std::exception& e) {
      // Whatever a partition sent, its failure is its own: it leaves the
      // pool with the reason; the hypervisor and the others go on.
      const std::string why = fmt::format("its hcall failed: {}", e.what());
      spdlog::warn("partition {}: {}; it leaves the pool", c.partition ? c.partition->config().name : "(unregistered)",
                   why);
      (void)proto::Send(s.fd, proto::Error{EIO, why});
    }
    if (!go_on) break;
    if (deadline && c.partition) deadline = !proto::SetReceiveTimeout(s.fd, std::chrono::milliseconds(0));
  }
  // The partition's memory goes back now; the socket is closed when the
  // session is reaped, so its number is not reused while Stop may shut it.
  if (c.partition) pool_.Remove(*c.partition);
  s.done.store(true);
  Wake();
}

void HvServer::Run() {
  std::list<Session> sessions;
  auto reap = [&](bool all) {
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (all && !it->done.load()) shutdown(it->fd, SHUT_RDWR);
      if (all || it->done.load()) {
        it->thread.join();
        close(it->fd);
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
  };
  while (!stopping_.load()) {
    pollfd fds[] = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) {
      spdlog::error("hypervisor: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof count);
      reap(false);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      const auto live = std::count_if(sessions.begin(), sessions.end(), [](const Session& s) { return !s.done; });
      if (fd >= 0 && static_cast<size_t>(live) >= limits_.max_connections) {
        (void)proto::Send(fd, proto::Error{EAGAIN, fmt::format("too many connections (at most {})",
                                                               limits_.max_connections)});
        spdlog::warn("hypervisor: refused a connection: {} are open", live);
        close(fd);
      } else if (fd >= 0) {
        Session& s = sessions.emplace_back(fd);
        s.thread = std::thread([this, &s] { Serve(s); });
      } else if (errno == EMFILE || errno == ENFILE) {
        // The listening socket stays readable: pause rather than spin
        // until a partition leaves and frees descriptors.
        spdlog::warn("hypervisor: cannot accept a partition: {}", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  reap(true);
}

}  // namespace cmm::hv
