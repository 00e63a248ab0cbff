// The hcall server: the pool's adapter for cmm partitions. It accepts them
// on a SOCK_SEQPACKET socket, takes their registration and memfd, adds each
// to the pool as a member, and answers their hcalls (a target from the
// rebalancer is answered on the next H_GET_MPP). One thread accepts; each
// partition's connection has a thread of its own. A partition that sends a
// malformed message gets an Error and is dropped, and its memory goes back.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

#include "members/partition/hcall_stats.h"
#include "members/partition/hv_partition.h"
#include "pool/pool.h"
#include "proto/channel.h"
#include "proto/messages.h"

namespace cmm::hv {

// What one peer may hold of the hypervisor: each connection has a thread.
struct ServerLimits {
  size_t max_connections = 1024;  // more are refused with EAGAIN
  // A connection that has not registered by then is dropped.
  std::chrono::milliseconds registration_timeout{5000};
};

// The terms the hypervisor offers partitions.
struct HcallOptions {
  uint64_t cmo_page_size = 4096;
  bool batch = true;  // offer the batched page-state call
  FaultPlan faults;
};

class HvServer {
 public:
  static Result<std::unique_ptr<HvServer>> Start(const std::string& path, Pool& pool, HcallOptions options = {},
                                                  ServerLimits limits = {});
  ~HvServer();  // stops the threads, drops every connection
  const std::string& path() const { return path_; }
  HcallStats& hcall_stats() { return hcall_stats_; }

 private:
  // A connection and its thread; reaped (joined, socket closed) by Run.
  struct Session {
    explicit Session(int f) : fd(f) {}
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  struct Connection;
  HvServer(std::string path, Pool& pool, int listen_fd, int wake_fd, HcallOptions options, ServerLimits limits);
  void Run();
  void Serve(Session& s);
  // Handles one message; false: drop the connection.
  bool Handle(int fd, Connection& c, proto::Received in, std::chrono::steady_clock::time_point arrived);
  // A registration: the memfd checked, the partition added to the pool.
  tl::expected<std::shared_ptr<HvPartition>, proto::Error> Register(const proto::Register& r, int memfd);
  void Wake();

  std::string path_;
  Pool& pool_;
  int listen_fd_;
  int wake_fd_;  // eventfd: wakes Run to stop or to reap a session
  std::atomic<bool> stopping_{false};
  const HcallOptions options_;
  const ServerLimits limits_;
  HcallStats hcall_stats_;
  std::thread thread_;
};

}  // namespace cmm::hv
