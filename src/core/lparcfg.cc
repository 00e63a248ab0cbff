#include "core/lparcfg.h"

#include <fmt/format.h>

namespace cmm {

std::string FormatLparcfg(const std::optional<papr::MppData>& mpp, const std::optional<CmoView>& cmo) {
  std::string out = "lparcfg 1.9\n";
  auto line = [&out](std::string_view key, const auto& value, std::string_view suffix = "") {
    out += fmt::format("{}={}{}\n", key, value, suffix);
  };
  if (mpp) {
    const papr::MppData& m = *mpp;
    line("entitled_memory", m.entitled_mem);
    if (m.mapped_entitled_mem != -1) line("mapped_entitled_memory", m.mapped_entitled_mem);
    line("entitled_memory_group_number", m.group_num);
    line("entitled_memory_pool_number", m.pool_num);
    line("entitled_memory_weight", m.mem_weight);
    line("unallocated_entitled_memory_weight", m.unallocated_mem_weight);
    line("unallocated_io_mapping_entitlement", m.unallocated_entitlement);
    if (m.pool_size != -1) line("entitled_memory_pool_size", m.pool_size, " bytes");
    line("entitled_memory_loan_request", m.loan_request);
    line("backing_memory", m.backing_mem, " bytes");
  }
  line("cmo_enabled", cmo ? 1 : 0);
  if (cmo) {
    line("cmo_faults", cmo->faults);
    line("cmo_fault_time_usec", cmo->fault_time_us);
    line("cmo_primary_psp", cmo->primary_psp);
    line("cmo_secondary_psp", cmo->secondary_psp);
    line("cmo_page_size", cmo->page_size);
  }
  return out;
}

}  // namespace cmm
