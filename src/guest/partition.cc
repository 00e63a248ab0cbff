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
  auto ram = GuestRam::Create(o.name, o.ram_bytes);
  if (!ram) return tl::unexpected(ram.error());
  return std::unique_ptr<Partition>(new Partition(o, std::move(*ram)));
}

Partition::Partition(const PartitionOptions& o, GuestRam ram)
    : name_(o.name),
      ram_(std::move(ram)),
      // Boot memory is Zone Normal; hot-added blocks will be Movable.
      allocator_(PageGeometry(o.page_size), o.ram_bytes / o.page_size, o.ram_bytes / o.page_size, &kernel_),
      runner_(clock_) {
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

}  // namespace cmm::guest
