// One partition: guest RAM, its allocator and kernel services, and the CMM
// controller driven by a poll thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <tl/expected.hpp>

#include "core/controller.h"
#include "core/runner.h"
#include "core/steady_clock.h"
#include "guest/allocator.h"
#include "guest/kernel.h"
#include "guest/log_sink.h"
#include "guest/ram.h"

namespace cmm::guest {

struct PartitionOptions {
  std::string name;
  uint64_t ram_bytes = uint64_t{1} << 30;  // online at boot (Zone Normal)
  uint64_t max_bytes = 0;    // the memfd's size, room for hot-add; 0: ram_bytes
  uint64_t block_bytes = 0;  // memory block size; 0: 128 MiB, halved until it divides RAM
  uint64_t page_size = 4096;
  ParamValues params;
  Hypervisor* hypervisor = nullptr;  // null: no hypervisor (simulate only)
  LogSink* log = nullptr;            // null: spdlog
};

class Partition {
 public:
  // Builds guest RAM and the controller; nothing runs yet.
  static tl::expected<std::unique_ptr<Partition>, std::string> Create(const PartitionOptions& options);
  ~Partition();

  // S9: 0 or a positive errno.
  int Start();
  // S10: every loaned page is given back. Safe to call twice.
  void Stop();

  // Hot-add (`cmm mem add`): onlines the next `bytes` of offline memory
  // blocks in Zone Movable. Returns the first block's index.
  tl::expected<uint64_t, std::string> HotAdd(uint64_t bytes);
  uint64_t block_bytes() const { return block_bytes_; }
  uint64_t blocks_total() const { return ram_.size() / block_bytes_; }
  uint64_t blocks_online() const;

  const std::string& name() const { return name_; }
  Controller& controller() { return *controller_; }
  PageAllocator& memory() { return allocator_; }
  KernelServices& kernel() { return kernel_; }
  GuestRam& ram() { return ram_; }

 private:
  Partition(const PartitionOptions& options, GuestRam ram, uint64_t block_bytes);

  std::string name_;
  GuestRam ram_;
  KernelServices kernel_;  // before the allocator, which uses it
  PageAllocator allocator_;
  SteadyClock clock_;
  SpdlogSink default_log_;
  PollRunner runner_;
  std::unique_ptr<Controller> controller_;
  bool started_ = false;
  const uint64_t block_bytes_;
  mutable std::mutex hotplug_mu_;  // serializes hot-add/remove
  uint64_t blocks_online_;         // guarded by hotplug_mu_; blocks [0, n) are online
};

}  // namespace cmm::guest
