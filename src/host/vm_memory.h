// Where a QEMU process's guest RAM is and how much of it the host backs:
// the guest-RAM memfd found through /proc/PID/fd (measured with st_blocks,
// as for partitions), else the resident part of the guest-RAM mapping in
// /proc/PID/smaps. QEMU's own memory is what is resident outside it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"

namespace cmm::hv {

struct SmapsTotals {
  uint64_t total_resident = 0;  // Rss of every mapping
  uint64_t guest_resident = 0;  // Rss of the guest-RAM mapping
  bool guest_found = false;
};

// Pure: the guest-RAM mapping is the largest one of exactly `ram_bytes`
// (QEMU maps guest RAM whole; nothing else of that size is as large).
SmapsTotals ParseSmaps(std::string_view text, uint64_t ram_bytes);

// Opens (a new descriptor of) the memfd of `pid` whose size is `ram_bytes`;
// -1 with a reason when there is none (guest RAM is anonymous memory).
Result<int> OpenGuestMemfd(pid_t pid, uint64_t ram_bytes);

Result<SmapsTotals> ReadSmaps(pid_t pid, uint64_t ram_bytes);

// VmRSS and RssShmem of a process, from /proc/PID/status: with guest RAM
// in a shared memfd, what QEMU touched of it is its RssShmem, so its own
// memory is the rest, read without walking every page as smaps does.
struct StatusRss {
  uint64_t rss = 0;
  uint64_t shmem = 0;
};
StatusRss ParseStatusRss(std::string_view text);  // pure
Result<StatusRss> ReadStatusRss(pid_t pid);

// st_blocks of a descriptor, in bytes.
uint64_t AllocatedBytes(int fd);

}  // namespace cmm::hv
