// A partition's guest RAM as the hypervisor holds it: the memfd the
// partition handed over. Behind an interface so page-state handling is
// tested without the OS, and for real against a memfd.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <tl/expected.hpp>

#include "core/error.h"
#include "core/units.h"

namespace cmm::hv {

class Backing {
 public:
  virtual ~Backing() = default;
  // Gives [offset, offset + length) back to the host; it reads as zeros after.
  virtual Result<void> Release(uint64_t offset, uint64_t length) = 0;
  // Host memory backing the RAM now.
  virtual Bytes BackingBytes() const = 0;
};

// Takes ownership of `fd`, a memfd of `size` bytes; checks the size and
// that it is sealed against shrinking and growing.
Result<std::unique_ptr<Backing>> MemfdBacking(int fd, uint64_t size);

}  // namespace cmm::hv
