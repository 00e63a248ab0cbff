#include "members/partition/backing.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

class Memfd final : public Backing {
 public:
  explicit Memfd(int fd) : fd_(fd) {}
  ~Memfd() override { close(fd_); }
  Result<void> Release(uint64_t offset, uint64_t length) override {
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
      return Fail(ErrorCode::kIo, fmt::format("punch hole at {:#x}+{:#x}: {}", offset, length, std::strerror(errno)));
    }
    return {};
  }
  Bytes BackingBytes() const override {
    struct stat st {};
    if (fstat(fd_, &st) != 0) return Bytes(0);
    return Bytes(static_cast<int64_t>(st.st_blocks) * 512);
  }

 private:
  int fd_;
};

}  // namespace

// What the partition sent is refused (kInvalid): not a sealed memfd of its size.
Result<std::unique_ptr<Backing>> MemfdBacking(int fd, uint64_t size) {
  auto fail = [fd](std::string why) {
    close(fd);
    return Fail(ErrorCode::kInvalid, std::move(why));
  };
  struct stat st {};
  if (fstat(fd, &st) != 0) return fail(fmt::format("guest RAM descriptor: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return fail("guest RAM descriptor is not a memfd");
  if (static_cast<uint64_t>(st.st_size) != size) {
    return fail(fmt::format("guest RAM memfd is {} bytes but the partition said {}", st.st_size, size));
  }
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return fail(fmt::format("guest RAM descriptor has no seals ({}): not a memfd", std::strerror(errno)));
  if ((seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_GROW) == 0) {
    return fail("guest RAM memfd must be sealed against shrinking and growing (F_SEAL_SHRINK, F_SEAL_GROW)");
  }
  return std::unique_ptr<Backing>(new Memfd(fd));
}

}  // namespace cmm::hv
