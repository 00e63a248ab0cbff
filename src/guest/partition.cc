#include "guest/partition.h"

#include <fmt/format.h>

namespace cmm::guest {

tl::expected<std::unique_ptr<Partition>, std::string> Partition::Create(const PartitionOptions& o) {
  if (!PageGeometry::Valid(o.page_size)) {
    return tl::unexpected(fmt::format("page size {} is not a power of two of at least 1 KiB", o.page_size));
  }
  if (o.ram_bytes == 0 || o.ram_bytes % o.page_size != 0) {
    return tl::unexpected(fmt::format("guest RAM of {} bytes is not a whole number of {}-byte pages", o.ram_bytes,
                                      o.page_size));
  }
  const uint64_t max = o.max_bytes == 0 ? o.ram_bytes : o.max_bytes;
  if (max < o.ram_bytes || max % o.page_size != 0) {
    return tl::unexpected(fmt::format("maximum RAM {} must be whole {}-byte pages and at least the boot RAM {}", max,
                                      o.page_size, o.ram_bytes));
  }
  uint64_t block = o.block_bytes;
  if (block == 0) {
    block = uint64_t{128} << 20;
    while (block > o.page_size && (o.ram_bytes % block != 0 || max % block != 0)) block /= 2;
  } else if (block % o.page_size != 0 || o.ram_bytes % block != 0 || max % block != 0) {
    return tl::unexpected(fmt::format("block size {} must be a whole number of pages and divide both the boot RAM "
                                      "({}) and the maximum RAM ({})",
                                      block, o.ram_bytes, max));
  }
  auto ram = GuestRam::Create(o.name, max);
  if (!ram) return tl::unexpected(ram.error());
  return std::unique_ptr<Partition>(new Partition(o, std::move(*ram), block));
}

Partition::Partition(const PartitionOptions& o, GuestRam ram, uint64_t block_bytes)
    : name_(o.name),
      ram_(std::move(ram)),
      // Boot memory is Zone Normal; hot-added blocks are Movable.
      allocator_(PageGeometry(o.page_size), ram_.data(), block_bytes / o.page_size, ram_.size() / block_bytes,
                 o.ram_bytes / block_bytes, &kernel_),
      cache_(allocator_, kernel_),
      runner_(clock_),
      workload_specs_(o.workloads),
      block_bytes_(block_bytes) {
  LogSink& log = o.log != nullptr ? *o.log : default_log_;
  controller_ = std::make_unique<Controller>(
      o.params, ControllerPorts{o.hypervisor, allocator_, kernel_, runner_, clock_, log});
}

Partition::~Partition() { Stop(); }

int Partition::Start() {
  const int rc = controller_->Start();
  started_ = rc == 0;
  if (started_ && !workload_specs_.empty()) {
    std::vector<std::unique_ptr<Workload>> list;
    for (const auto& spec : workload_specs_) list.push_back(std::make_unique<Workload>(spec, allocator_, cache_));
    std::lock_guard lock(workloads_mu_);
    workloads_ = std::make_unique<WorkloadRunner>(std::move(list));
  }
  return rc;
}

void Partition::Stop() {
  if (!started_) return;
  started_ = false;
  std::unique_ptr<WorkloadRunner> stopping;
  {
    std::lock_guard lock(workloads_mu_);
    stopping = std::move(workloads_);
  }
  stopping.reset();  // joins the thread and frees every page, checked
  controller_->Stop();
}

std::vector<WorkloadStats> Partition::workload_stats() const {
  std::lock_guard lock(workloads_mu_);
  return workloads_ ? workloads_->Stats() : std::vector<WorkloadStats>{};
}


uint64_t Partition::blocks_online() const {
  uint64_t n = 0;
  for (uint64_t b = 0; b < allocator_.blocks(); ++b) n += allocator_.block_state(b) != BlockState::kOffline ? 1 : 0;
  return n;
}

tl::expected<std::vector<uint64_t>, std::string> Partition::HotAdd(uint64_t bytes) {
  if (bytes == 0 || bytes % block_bytes_ != 0) {
    return tl::unexpected(fmt::format("hot-add size must be a positive multiple of the {}-byte block size", block_bytes_));
  }
  std::lock_guard lock(hotplug_mu_);
  const uint64_t count = bytes / block_bytes_;
  std::vector<uint64_t> offline;
  for (uint64_t b = 0; b < allocator_.blocks(); ++b) {
    if (allocator_.block_state(b) == BlockState::kOffline) offline.push_back(b);
  }
  if (count > offline.size()) {
    return tl::unexpected(fmt::format("only {} of {} memory blocks are offline ({} bytes); start the partition with "
                                      "a larger maximum RAM to add more",
                                      offline.size(), blocks_total(), offline.size() * block_bytes_));
  }
  offline.resize(count);
  for (const uint64_t b : offline) {
    kernel_.NotifyMemory(MemoryAction::kGoingOnline);
    allocator_.OnlineBlock(b);
    kernel_.NotifyMemory(MemoryAction::kOnline);
  }
  return offline;
}

}  // namespace cmm::guest
