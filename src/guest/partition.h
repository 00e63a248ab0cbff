// One partition: guest RAM, its allocator and kernel services, and the CMM
// controller driven by a poll thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "core/controller.h"
#include "core/error.h"
#include "core/mutex.h"
#include "core/runner.h"
#include "core/steady_clock.h"
#include "guest/allocator.h"
#include "guest/hv_client.h"
#include "guest/kernel.h"
#include "guest/log_sink.h"
#include "guest/page_cache.h"
#include "guest/ram.h"
#include "guest/workload.h"

namespace cmm::guest {

struct PartitionOptions {
  std::string name;
  Bytes ram_bytes = GiB(1);  // online at boot (Zone Normal)
  Bytes max_bytes;           // the memfd's size, room for hot-add; 0: ram_bytes
  Bytes block_bytes;         // memory block size; 0: 128 MiB, halved until it divides RAM
  uint64_t page_size = 4096;
  ParamValues params;
  Hypervisor* hypervisor = nullptr;  // null: no hypervisor (simulate only)
  LogSink* log = nullptr;            // null: spdlog
  std::vector<WorkloadSpec> workloads;  // started with the partition
  std::string hv_socket;                // register with the hypervisor there
  uint8_t weight = 128;                 // PAPR mem_weight, sent at registration
  bool batch = true;                    // use the batched page-state call when offered
  std::optional<Bytes> pool_min_bytes;  // for the pool policy; default min_mem_mb
  std::optional<Bytes> pool_max_bytes;  // for the pool policy; default: all of RAM
};

struct HotRemoveReport {
  std::vector<uint64_t> blocks;  // removed
  uint64_t movable_migrated = 0;
  uint64_t balloon_migrated = 0;
  Bytes bytes_released;  // memfd backing given back to the host
};


class Partition {
 public:
  // Builds guest RAM and the controller; nothing runs yet.
  // kInvalid for options that do not fit together, kIo when the RAM
  // cannot be made, and the hypervisor's errors (HvClient::Connect).
  static Result<std::unique_ptr<Partition>> Create(const PartitionOptions& options);
  ~Partition();

  // S9 (0 or a positive errno), then the workloads start; with a
  // hypervisor, once the balloon holds what the pool had no room for (at
  // most a few seconds: admission).
  int Start();
  // The workloads free their pages (each checked), then S10: every loaned
  // page is given back. Safe to call twice.
  void Stop();
  // S11, the restart chain: the workloads end (their pages freed, checked),
  // then the reboot notifiers run and the balloon stops and gives back
  // every page. Returns how many it gave back. The partition is then
  // dropped and made again from its options (`cmm reboot`).
  int64_t Restart();

  // Hot-add (`cmm mem add`): onlines `bytes` of offline memory blocks,
  // lowest first, in Zone Movable. Returns the blocks onlined; kInvalid
  // for a size that is not whole blocks or more than is offline.
  Result<std::vector<uint64_t>> HotAdd(Bytes bytes);
  // Hot-remove of one block, the kernel's sequence: "going offline",
  // isolate, migrate every movable and balloon page out (S13), then
  // "offline" and the block's memory goes back to the host; or, if a page
  // cannot move, "offline cancelled" with nothing lost. The error names the
  // pages that blocked it: kInvalid for a request that cannot be done (no
  // such block, not online, the last one), kBusy when it was cancelled.
  Result<HotRemoveReport> HotRemove(uint64_t block);
  // Removes `bytes` worth of blocks, trying the highest online blocks first
  // and skipping those that cannot be removed.
  Result<HotRemoveReport> HotRemoveBytes(Bytes bytes);
  Bytes block_bytes() const { return block_bytes_; }
  uint64_t blocks_total() const;
  uint64_t blocks_online() const;

  const std::string& name() const { return name_; }
  Controller& controller() { return *controller_; }
  PageAllocator& memory() { return allocator_; }
  KernelServices& kernel() { return kernel_; }
  GuestRam& ram() { return ram_; }
  HvClient* hv() { return hv_.get(); }
  PageCache& cache() { return cache_; }
  std::vector<WorkloadStats> workload_stats() const;

 private:
  Bytes WaitForBalloon(Bytes bytes);  // what the balloon holds when it returns
  Bytes Loaned() const;
  uint64_t BytesOf(Pages p) const;          // for the wire and the logs, which count bytes unsigned
  void StopWorkloads();
  Partition(const PartitionOptions& options, GuestRam ram, Bytes block_bytes, std::unique_ptr<HvClient> hv);

  std::string name_;
  GuestRam ram_;
  std::unique_ptr<HvClient> hv_;  // null: simulate, or a hypervisor given in the options
  KernelServices kernel_;  // before the allocator, which uses it
  PageAllocator allocator_;
  PageCache cache_;
  SteadyClock clock_;
  SpdlogSink default_log_;
  PollRunner runner_;
  std::unique_ptr<Controller> controller_;
  bool started_ = false;
  std::vector<WorkloadSpec> workload_specs_;
  mutable Mutex workloads_mu_;  // guards the pointer below, not the workloads
  std::unique_ptr<WorkloadRunner> workloads_ GUARDED_BY(workloads_mu_);
  const Bytes block_bytes_;
  Mutex hotplug_mu_;  // serializes hot-add/remove
  Result<HotRemoveReport> HotRemoveLocked(uint64_t block) REQUIRES(hotplug_mu_);
};

}  // namespace cmm::guest
