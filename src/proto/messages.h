// The wire format between a partition and the hypervisor: one message per
// SOCK_SEQPACKET packet, an 8-byte header (magic, version, type, payload
// length) then a little-endian payload. Decoding checks every field; a
// packet that fails gets a reason, never undefined behaviour.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <tl/expected.hpp>

#include "core/names.h"

#include "papr/papr.h"

namespace cmm::proto {

inline constexpr uint16_t kMagic = 0x4D43;  // "CM"
inline constexpr uint8_t kVersion = 3;  // 3: stats carry direct reclaim
inline constexpr size_t kHeaderBytes = 8;
inline constexpr size_t kMaxPayload = 64 * 1024;
inline constexpr size_t kMaxName = kMaxNameLength;
inline constexpr uint32_t kMaxBatch = 4096;  // CMO pages per batched call
inline constexpr uint32_t kCapBatch = 1;     // capability bit: PageInitBatch

// Partition → hypervisor, first message; the guest RAM memfd rides along.
struct Register {
  std::string name;
  uint64_t page_size = 0;
  uint64_t ram_bytes = 0;
  uint8_t weight = 0;  // PAPR mem_weight, 0-255
  uint64_t min_bytes = 0;
  uint64_t max_bytes = 0;  // 0: the RAM size
  bool want_batch = true;
  friend bool operator==(const Register&, const Register&) = default;
};

// Hypervisor → partition: accepted.
struct Registered {
  uint64_t cmo_page_size = 0;
  uint32_t caps = 0;
  uint32_t max_batch = 0;
  friend bool operator==(const Registered&, const Registered&) = default;
};

// What a partition reports with every poll.
struct Stats {
  uint64_t free_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t cache_bytes = 0;
  uint64_t loaned_bytes = 0;
  uint64_t oom_events = 0;
  uint64_t time_ns = 0;  // the partition's monotonic clock
  // What the balloon gave back on OOM and keeps back from every target
  // since (oom_freed_kb, S6): the hypervisor asks that much more.
  uint64_t oom_freed_bytes = 0;
  // What its allocations had to reclaim first (direct reclaim), since it
  // started: a sign of pressure (pool/member.h).
  uint64_t reclaimed_bytes = 0;
  friend bool operator==(const Stats&, const Stats&) = default;
};

// H_GET_MPP, carrying the partition's stats.
struct GetMpp {
  Stats stats;
  friend bool operator==(const GetMpp&, const GetMpp&) = default;
};
struct Mpp {
  papr::Rc rc = 0;
  papr::MppData data;
  friend bool operator==(const Mpp&, const Mpp&) = default;
};

// H_PAGE_INIT on one CMO page.
struct PageInit {
  uint64_t flags = 0;
  uint64_t address = 0;
  friend bool operator==(const PageInit&, const PageInit&) = default;
};
struct PageInitRc {
  papr::Rc rc = 0;
  friend bool operator==(const PageInitRc&, const PageInitRc&) = default;
};

// Our extension: H_PAGE_INIT on several CMO pages in order, stopping at
// the first failure.
struct PageInitBatch {
  uint64_t flags = 0;
  std::vector<uint64_t> addresses;
  friend bool operator==(const PageInitBatch&, const PageInitBatch&) = default;
};
struct PageInitBatchRc {
  uint32_t done = 0;  // pages applied before `rc` stopped it
  papr::Rc rc = 0;
  friend bool operator==(const PageInitBatchRc&, const PageInitBatchRc&) = default;
};

// Either side: the request was refused; the sender closes after it.
struct Error {
  uint32_t code = 0;  // an errno value
  std::string message;
  friend bool operator==(const Error&, const Error&) = default;
};

using Message = std::variant<Register, Registered, GetMpp, Mpp, PageInit, PageInitRc, PageInitBatch, PageInitBatchRc,
                             Error>;

std::vector<uint8_t> Encode(const Message& m);
// Why a packet was refused, said for the log and the Error reply.
tl::expected<Message, std::string> Decode(std::span<const uint8_t> packet);

using cmm::ValidName;  // core/names.h: one rule for names everywhere

}  // namespace cmm::proto
