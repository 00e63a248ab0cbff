// Guest RAM: one memfd of the partition's size, mapped shared. The memfd is
// what a hypervisor receives to reclaim loaned pages.
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"

namespace cmm::guest {

class GuestRam {
 public:
  // Creates a memfd named "cmm:<name>" of `bytes` and maps it.
  // kInvalid for a size of 0, kIo when the system cannot make it.
  static Result<GuestRam> Create(const std::string& name, uint64_t bytes);
  GuestRam(GuestRam&& o) noexcept;
  GuestRam& operator=(GuestRam&& o) noexcept;
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;
  ~GuestRam();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  uint8_t* data() const { return base_; }
  // Host memory backing the memfd now (st_blocks * 512).
  uint64_t BackingBytes() const;
  // Seals the memfd against shrinking and growing, as a hypervisor that
  // releases its pages requires.
  Result<void> Seal();
  // Gives the range's memory back to the host; it reads as zeros afterwards.
  Result<void> Release(uint64_t offset, uint64_t length);

 private:
  GuestRam(int fd, uint64_t size, uint8_t* base) : fd_(fd), size_(size), base_(base) {}
  void Reset();

  int fd_ = -1;
  uint64_t size_ = 0;
  uint8_t* base_ = nullptr;
};

}  // namespace cmm::guest
