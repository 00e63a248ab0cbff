// One partition: guest RAM, its allocator and kernel services, and the CMM
// controller driven by a poll thread.
#pragma once

#include <memory>
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
  uint64_t ram_bytes = uint64_t{1} << 30;
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

  const std::string& name() const { return name_; }
  Controller& controller() { return *controller_; }
  PageAllocator& memory() { return allocator_; }
  KernelServices& kernel() { return kernel_; }
  GuestRam& ram() { return ram_; }

 private:
  Partition(const PartitionOptions& options, GuestRam ram);

  std::string name_;
  GuestRam ram_;
  KernelServices kernel_;  // before the allocator, which uses it
  PageAllocator allocator_;
  SteadyClock clock_;
  SpdlogSink default_log_;
  PollRunner runner_;
  std::unique_ptr<Controller> controller_;
  bool started_ = false;
};

}  // namespace cmm::guest
