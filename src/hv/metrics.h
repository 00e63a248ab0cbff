// The hypervisor's metrics in the Prometheus text format (version 0.0.4):
// the pool, each member's memory (labelled with its kind), and the hcalls
// answered.
#pragma once

#include <string>
#include <vector>

#include "members/partition/hcall_stats.h"
#include "pool/pool.h"

namespace cmm::hv {

// `shortfall_bytes`: how far the members' floors are above the pool (0
// when it can be met).
std::string PrometheusText(Bytes pool_bytes, const Feasibility& feasibility, const std::vector<MemberView>& members,
                           const HcallStats::Snapshot& hcalls);

}  // namespace cmm::hv
