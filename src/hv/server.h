// The hypervisor's endpoint: accepts partitions on a SOCK_SEQPACKET socket,
// takes their registration and memfd, answers their hcalls, and reruns the
// pool policy every period. One thread; a partition that sends a malformed
// message gets an Error and is dropped, and its memory goes back.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <tl/expected.hpp>

#include "hv/pool.h"

namespace cmm::hv {

class HvServer {
 public:
  static tl::expected<std::unique_ptr<HvServer>, std::string> Start(const std::string& path, Pool& pool,
                                                                   std::chrono::milliseconds period);
  ~HvServer();  // stops the thread, drops every connection
  const std::string& path() const { return path_; }

 private:
  HvServer(std::string path, Pool& pool, int listen_fd, int wake_fd, std::chrono::milliseconds period);
  void Run();

  std::string path_;
  Pool& pool_;
  int listen_fd_;
  int wake_fd_;  // eventfd: wakes the thread to stop
  std::chrono::milliseconds period_;
  std::thread thread_;
};

}  // namespace cmm::hv
