// The hypervisor interface of PAPR that CMM uses: hcall ids, H_PAGE_INIT
// flags, return codes and the H_GET_MPP data. Nothing else lives here.
#pragma once

#include <cstdint>
#include <string_view>

namespace cmm::papr {

// Hcall numbers, as in the PAPR hcall table.
inline constexpr uint64_t kHPageInit = 0x2C;
inline constexpr uint64_t kHGetMpp = 0x2D4;

// PAPR numbers bits from the most significant end: bit 0 is 1<<63.
constexpr uint64_t PaprBit(unsigned n) { return uint64_t{1} << (63 - n); }

inline constexpr uint64_t kPageStateChange = PaprBit(28);
inline constexpr uint64_t kPageUnused = PaprBit(29) | PaprBit(30);
inline constexpr uint64_t kPageSetUnused = kPageStateChange | kPageUnused;
inline constexpr uint64_t kPageSetLoaned = kPageSetUnused | PaprBit(31);
inline constexpr uint64_t kPageSetActive = kPageStateChange;

// Hcall return codes. An hcall returns a signed long; values outside this
// list are possible and are reported by number.
using Rc = int64_t;
inline constexpr Rc kSuccess = 0;
inline constexpr Rc kHardware = -1;
inline constexpr Rc kFunction = -2;
inline constexpr Rc kPrivilege = -3;
inline constexpr Rc kParameter = -4;
inline constexpr Rc kNotEnoughResources = -44;

// "H_SUCCESS", "H_PARAMETER", ... or "H_UNKNOWN" for codes not listed above.
std::string_view RcName(Rc rc);

// What H_GET_MPP returns (hvcall_mpp_data). Sizes are bytes; -1 in
// mapped_entitled_mem or pool_size means "not reported".
struct MppData {
  int64_t entitled_mem = 0;
  int64_t mapped_entitled_mem = -1;
  uint16_t group_num = 0;
  uint16_t pool_num = 0;
  uint8_t mem_weight = 0;
  uint8_t unallocated_mem_weight = 0;
  int64_t unallocated_entitlement = 0;
  int64_t pool_size = -1;
  int64_t loan_request = 0;  // positive: loan this much more; negative: may take back
  int64_t backing_mem = 0;

  friend bool operator==(const MppData&, const MppData&) = default;
};

}  // namespace cmm::papr
