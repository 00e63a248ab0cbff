// The partition's view of its memory entitlement, in the layout of Linux's
// /proc/ppc64/lparcfg (version 1.9): the memory lines from H_GET_MPP, then
// the CMO lines. Pure text formatting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "papr/papr.h"

namespace cmm {

struct CmoView {
  uint64_t page_size = 0;     // cmo_page_size in bytes
  uint64_t faults = 0;        // cmo_faults
  uint64_t fault_time_us = 0; // cmo_fault_time_usec
  uint64_t primary_psp = 0;
  uint64_t secondary_psp = 0;
};

// `mpp`: the H_GET_MPP answer, if the call worked; `cmo`: present when CMO
// is enabled (absent in simulate mode: cmo_enabled=0).
std::string FormatLparcfg(const std::optional<papr::MppData>& mpp, const std::optional<CmoView>& cmo);

}  // namespace cmm
