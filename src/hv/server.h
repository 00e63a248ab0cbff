// The hypervisor's endpoint: accepts partitions on a SOCK_SEQPACKET socket,
// takes their registration and memfd, answers their hcalls, and reruns the
// pool policy every period. One thread accepts and rebalances; each
// partition's connection has a thread of its own. A partition that sends a
// malformed message gets an Error and is dropped, and its memory goes back.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

#include "hv/pool.h"

namespace cmm::hv {

// What one peer may hold of the hypervisor: each connection has a thread.
struct ServerLimits {
  size_t max_connections = 1024;  // more are refused with EAGAIN
  // A connection that has not registered by then is dropped.
  std::chrono::milliseconds registration_timeout{5000};
};

class HvServer {
 public:
  static tl::expected<std::unique_ptr<HvServer>, std::string> Start(const std::string& path, Pool& pool,
                                                                   std::chrono::milliseconds period,
                                                                   ServerLimits limits = {});
  ~HvServer();  // stops the threads, drops every connection
  const std::string& path() const { return path_; }

 private:
  // A connection and its thread; reaped (joined, socket closed) by Run.
  struct Session {
    explicit Session(int f) : fd(f) {}
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  HvServer(std::string path, Pool& pool, int listen_fd, int wake_fd, std::chrono::milliseconds period,
           ServerLimits limits);
  void Run();
  void Serve(Session& s);
  void Wake();

  std::string path_;
  Pool& pool_;
  int listen_fd_;
  int wake_fd_;  // eventfd: wakes Run to stop or to reap a session
  std::atomic<bool> stopping_{false};
  std::chrono::milliseconds period_;
  const ServerLimits limits_;
  std::thread thread_;
};

}  // namespace cmm::hv
