#include "guest/partition.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/size_text.h"

namespace cmm::guest {

Result<std::unique_ptr<Partition>> Partition::Create(const PartitionOptions& o) {
  if (!PageGeometry::Valid(o.page_size)) {
    return Fail(ErrorCode::kInvalid, fmt::format("page size {} is not a power of two of at least 1 KiB", o.page_size));
  }
  const Bytes page(static_cast<int64_t>(o.page_size));
  const Bytes zero;
  if (o.ram_bytes <= zero || o.ram_bytes % page != zero) {
    return Fail(ErrorCode::kInvalid, fmt::format("guest RAM of {} bytes is not a whole number of {}-byte pages",
                                                 o.ram_bytes.value(), o.page_size));
  }
  const Bytes max = o.max_bytes == zero ? o.ram_bytes : o.max_bytes;
  if (max < o.ram_bytes || max % page != zero) {
    return Fail(ErrorCode::kInvalid, fmt::format("maximum RAM {} must be whole {}-byte pages and at least the boot RAM {}",
                                                 max.value(), o.page_size, o.ram_bytes.value()));
  }
  Bytes block = o.block_bytes;
  if (block == zero) {
    block = MiB(128);
    while (block > page && (o.ram_bytes % block != zero || max % block != zero)) block = block / 2;
  } else if (block <= zero || block % page != zero || o.ram_bytes % block != zero || max % block != zero) {
    return Fail(ErrorCode::kInvalid, fmt::format("block size {} must be a whole number of pages and divide both the boot RAM "
                                                 "({}) and the maximum RAM ({})",
                                                 block.value(), o.ram_bytes.value(), max.value()));
  }
  auto ram = GuestRam::Create(o.name, static_cast<uint64_t>(max.value()));
  if (!ram) return tl::unexpected(ram.error());
  std::unique_ptr<HvClient> hv;
  if (!o.hv_socket.empty()) {
    // The hypervisor releases pages of this memfd: its size must not change.
    if (auto sealed = ram->Seal(); !sealed) return tl::unexpected(sealed.error());
    proto::Register reg;
    reg.name = o.name;
    reg.page_size = o.page_size;
    reg.ram_bytes = static_cast<uint64_t>(max.value());
    reg.weight = o.weight;
    reg.want_batch = o.batch;
    const Bytes floor = o.pool_min_bytes.value_or(MiB(static_cast<int64_t>(o.params.min_mem_mb)));
    reg.min_bytes = static_cast<uint64_t>(std::min(max, floor).value());
    reg.max_bytes = static_cast<uint64_t>(o.pool_max_bytes.value_or(Bytes(0)).value());
    auto client = HvClient::Connect(o.hv_socket, reg, ram->fd());
    if (!client) return tl::unexpected(client.error().Within("hypervisor at " + o.hv_socket));
    hv = std::move(*client);
  }
  return std::unique_ptr<Partition>(new Partition(o, std::move(*ram), block, std::move(hv)));
}

Partition::Partition(const PartitionOptions& o, GuestRam ram, Bytes block_bytes, std::unique_ptr<HvClient> hv)
    : name_(o.name),
      ram_(std::move(ram)),
      hv_(std::move(hv)),
      // Boot memory is Zone Normal; hot-added blocks are Movable.
      allocator_(PageGeometry(o.page_size), ram_.data(), PageGeometry(o.page_size).WholePages(block_bytes).value(),
                 static_cast<uint64_t>(static_cast<int64_t>(ram_.size()) / block_bytes.value()),
                 static_cast<uint64_t>(o.ram_bytes / block_bytes), &kernel_),
      cache_(allocator_, kernel_),
      runner_(clock_),
      workload_specs_(o.workloads),
      block_bytes_(block_bytes) {
  LogSink& log = o.log != nullptr ? *o.log : default_log_;
  Hypervisor* hypervisor = hv_ ? hv_.get() : o.hypervisor;
  controller_ = std::make_unique<Controller>(
      o.params, ControllerPorts{hypervisor, allocator_, kernel_, runner_, clock_, log});
  if (hv_) {
    hv_->SetStatsSource([this] {
      const uint64_t ps = allocator_.Geometry().size();
      const FrameCounts c = allocator_.Counts();
      proto::Stats s;
      s.free_bytes = (c.free + c.isolated_free) * ps;
      s.cache_bytes = cache_.pages() * ps;
      s.used_bytes = (c.movable + c.unmovable) * ps - std::min((c.movable + c.unmovable) * ps, s.cache_bytes);
      s.loaned_bytes = BytesOf(controller_->loaned());
      s.oom_freed_bytes = BytesOf(controller_->oom_freed());
      // For the pool, memory the balloon gave back on OOM is an OOM event
      // as much as a failed allocation: the partition is short of memory.
      s.oom_events = allocator_.oom_events() + allocator_.oom_give_backs();
      s.reclaimed_bytes = allocator_.direct_reclaimed() * ps;
      s.time_ns = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
              .count());
      return s;
    });
    hv_->SetLoanedSource([this] { return controller_->LoanedCmoAddresses(); });
  }
}

Partition::~Partition() { Stop(); }

int Partition::Start() {
  // Admission: what the pool has no room for is loaned before the
  // workload can touch it.
  Bytes admitted_loan;
  if (hv_ && !workload_specs_.empty()) {
    papr::MppData mpp;
    if (hv_->GetMpp(mpp) == papr::kSuccess && mpp.loan_request > 0) admitted_loan = Bytes(mpp.loan_request);
  }
  const int rc = controller_->Start();
  started_ = rc == 0;
  if (started_ && admitted_loan > Bytes(0)) {
    const Bytes held = WaitForBalloon(admitted_loan);
    spdlog::info("{}: the pool had no room for {}; the balloon holds {} before the workloads start", name_,
                 FormatBytes(admitted_loan), FormatBytes(held));
  }
  if (started_ && !workload_specs_.empty()) {
    std::vector<std::unique_ptr<Workload>> list;
    for (const auto& spec : workload_specs_) list.push_back(std::make_unique<Workload>(spec, allocator_, cache_));
    MutexLock lock(workloads_mu_);
    workloads_ = std::make_unique<WorkloadRunner>(std::move(list), clock_);
  }
  return rc;
}

uint64_t Partition::BytesOf(Pages p) const {
  return static_cast<uint64_t>(allocator_.Geometry().ToBytes(std::max(p, Pages(0))).value());
}

Bytes Partition::WaitForBalloon(Bytes bytes) {
  // Bounded: a balloon that stops growing (min_mem_mb, a stalled pool) does
  // not hold the workload back for long.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Bytes last;
  auto last_growth = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    const Bytes loaned = Loaned();
    // The pool may have settled on less by now (it rebalances meanwhile).
    const Bytes target = allocator_.Geometry().ToBytes(controller_->loaned_target());
    if (loaned >= bytes || (loaned > Bytes(0) && loaned >= target)) return loaned;
    const auto now = std::chrono::steady_clock::now();
    if (loaned > last) {
      last = loaned;
      last_growth = now;
    } else if (now - last_growth > std::chrono::seconds(2)) {
      return loaned;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Loaned();
}

Bytes Partition::Loaned() const { return allocator_.Geometry().ToBytes(controller_->loaned()); }

uint64_t Partition::blocks_total() const {
  return static_cast<uint64_t>(static_cast<int64_t>(ram_.size()) / block_bytes_.value());
}

void Partition::StopWorkloads() {
  std::unique_ptr<WorkloadRunner> stopping;
  {
    MutexLock lock(workloads_mu_);
    stopping = std::move(workloads_);
  }
  stopping.reset();  // joins the thread and frees every page, checked
}

void Partition::Stop() {
  if (!started_) return;
  started_ = false;
  StopWorkloads();
  controller_->Stop();
}

int64_t Partition::Restart() {
  const Pages loaned = controller_->loaned();
  StopWorkloads();
  kernel_.NotifyReboot(RebootAction::kRestart);
  return (loaned - controller_->loaned()).value();
}

std::vector<WorkloadStats> Partition::workload_stats() const {
  MutexLock lock(workloads_mu_);
  return workloads_ ? workloads_->Stats() : std::vector<WorkloadStats>{};
}


uint64_t Partition::blocks_online() const {
  uint64_t n = 0;
  for (uint64_t b = 0; b < allocator_.blocks(); ++b) n += allocator_.block_state(b) != BlockState::kOffline ? 1 : 0;
  return n;
}

Result<std::vector<uint64_t>> Partition::HotAdd(Bytes bytes) {
  if (bytes <= Bytes(0) || bytes % block_bytes_ != Bytes(0)) {
    return Fail(ErrorCode::kInvalid, fmt::format("hot-add size must be a positive multiple of the {}-byte block size",
                                                 block_bytes_.value()));
  }
  MutexLock lock(hotplug_mu_);
  const auto count = static_cast<uint64_t>(bytes / block_bytes_);
  std::vector<uint64_t> offline;
  for (uint64_t b = 0; b < allocator_.blocks(); ++b) {
    if (allocator_.block_state(b) == BlockState::kOffline) offline.push_back(b);
  }
  if (count > offline.size()) {
    return Fail(ErrorCode::kInvalid, fmt::format("only {} of {} memory blocks are offline ({} bytes); start the partition "
                                                 "with a larger maximum RAM to add more",
                                                 offline.size(), blocks_total(),
                                                 (block_bytes_ * static_cast<int64_t>(offline.size())).value()));
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
