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
      allocator_(PageGeometry(o.page_size), ram_.size() / o.page_size, o.ram_bytes / o.page_size, &kernel_),
      runner_(clock_),
      block_bytes_(block_bytes),
      blocks_online_(o.ram_bytes / block_bytes) {
  LogSink& log = o.log != nullptr ? *o.log : default_log_;
  controller_ = std::make_unique<Controller>(
      o.params, ControllerPorts{o.hypervisor, allocator_, kernel_, runner_, clock_, log});
}

Partition::~Partition() { Stop(); }

int Partition::Start() {
  const int rc = controller_->Start();
  started_ = rc == 0;
  return rc;
}

void Partition::Stop() {
  if (!started_) return;
  started_ = false;
  controller_->Stop();
}


uint64_t Partition::blocks_online() const {
  std::lock_guard lock(hotplug_mu_);
  return blocks_online_;
}

tl::expected<uint64_t, std::string> Partition::HotAdd(uint64_t bytes) {
  if (bytes == 0 || bytes % block_bytes_ != 0) {
    return tl::unexpected(fmt::format("hot-add size must be a positive multiple of the {}-byte block size", block_bytes_));
  }
  std::lock_guard lock(hotplug_mu_);
  const uint64_t count = bytes / block_bytes_;
  const uint64_t offline = blocks_total() - blocks_online_;
  if (count > offline) {
    return tl::unexpected(fmt::format("only {} of {} memory blocks are offline ({} bytes); start the partition with "
                                      "a larger maximum RAM to add more",
                                      offline, blocks_total(), offline * block_bytes_));
  }
  const uint64_t first = blocks_online_;
  const uint64_t pages_per_block = block_bytes_ / allocator_.Geometry().size();
  for (uint64_t b = first; b < first + count; ++b) {
    kernel_.NotifyMemory(MemoryAction::kGoingOnline);
    allocator_.Online(Pfn{b * pages_per_block}, pages_per_block);
    kernel_.NotifyMemory(MemoryAction::kOnline);
  }
  blocks_online_ += count;
  return first;
}

}  // namespace cmm::guest
