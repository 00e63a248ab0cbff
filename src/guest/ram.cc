#include "guest/ram.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

namespace cmm::guest {

Result<GuestRam> GuestRam::Create(const std::string& name, uint64_t bytes) {
  if (bytes == 0) return Fail(ErrorCode::kInvalid, "guest RAM size must be above 0");
  const int fd = memfd_create(("cmm:" + name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Fail(ErrorCode::kIo, fmt::format("memfd_create: {}", std::strerror(errno)));
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int e = errno;
    close(fd);
    return Fail(ErrorCode::kIo, fmt::format("sizing guest RAM to {} bytes: {}", bytes, std::strerror(e)));
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    const int e = errno;
    close(fd);
    return Fail(ErrorCode::kIo, fmt::format("mapping {} bytes of guest RAM: {}", bytes, std::strerror(e)));
  }
  return GuestRam(fd, bytes, static_cast<uint8_t*>(base));
}

Result<void> GuestRam::Seal() {
  if (fcntl(fd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("sealing guest RAM: {}", std::strerror(errno)));
  }
  return {};
}

GuestRam::GuestRam(GuestRam&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), size_(std::exchange(o.size_, 0)), base_(std::exchange(o.base_, nullptr)) {}

GuestRam& GuestRam::operator=(GuestRam&& o) noexcept {
  if (this != &o) {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
    size_ = std::exchange(o.size_, 0);
    base_ = std::exchange(o.base_, nullptr);
  }
  return *this;
}

GuestRam::~GuestRam() { Reset(); }

void GuestRam::Reset() {
  if (base_ != nullptr) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

uint64_t GuestRam::BackingBytes() const {
  struct stat st {};
  if (fstat(fd_, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Result<void> GuestRam::Release(uint64_t offset, uint64_t length) {
  if (offset + length > size_ || offset + length < offset) {
    return Fail(ErrorCode::kInvalid,
                fmt::format("release of [{}, +{}) is outside guest RAM of {} bytes", offset, length, size_));
  }
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("punching a hole at {} (+{}): {}", offset, length, std::strerror(errno)));
  }
  return {};
}

}  // namespace cmm::guest
