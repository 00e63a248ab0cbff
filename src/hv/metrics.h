// The hypervisor's metrics in the Prometheus text format (version 0.0.4):
// the pool, each member's memory (labelled with its kind), and the hcalls
// answered.
#pragma once

#include <string>
#include <vector>

#include "hv/hcall_stats.h"
#include "hv/pool.h"

namespace cmm::hv {

std::string PrometheusText(uint64_t pool_bytes, const std::vector<MemberView>& members,
                           const HcallStats::Snapshot& hcalls);

}  // namespace cmm::hv
