// The pool as one JSON document: what `cmm hv status --json`, `/status`,
// the web page and `cmm hv watch` all show, written in this one place.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hv/monitor.h"
#include "hv/pool.h"

namespace cmm::hv {

// One word for how a member stands, for the status column: "unresponsive",
// "starting" (no stats yet), "at its floor", "inflating", "deflating" or
// "at target". A member is at its target within the policy's settle band.
std::string Condition(const MemberView& m);
// Whether its loan is within the settle band of its target.
bool AtTarget(const MemberView& m);

// {"pool_bytes", "backing_bytes", "ram_bytes", "floors_bytes",
//  "shortfall_bytes", ["problem"], "partitions": [one object per member]}.
nlohmann::json StatusJson(uint64_t pool_bytes, const Feasibility& feasibility, const std::vector<MemberView>& members);
nlohmann::json StatusJson(const Pool& pool);

// What a live view asks each second: {"status": StatusJson, "now_ms",
// "samples": {"t": [unix ms], "pool": [...], "backing": [...], "loaned":
// [...], "members": [...]} since `since_ms`, "events": [{"seq", "t", "kind", "member",
// "text"}] after `after_seq`}.
nlohmann::json LiveJson(const Pool& pool, const PoolMonitor& monitor, int64_t now_ms, int64_t since_ms,
                        uint64_t after_seq);

}  // namespace cmm::hv
