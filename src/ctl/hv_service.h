// The hypervisor's control service, beside the partition's: the requests
// `cmm hv status|set|watch` and `cmm vm run|attach` send to its control
// socket, and the web page's /live. The CLI only starts it and prints.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "ctl/http_server.h"
#include "ctl/server.h"
#include "pool/monitor.h"
#include "pool/pool.h"
#include "members/qemu/vm_adapter.h"

namespace cmm::ctl {

struct HvService {
  hv::Pool& pool;
  hv::VmAdapter& vms;
  const hv::PoolMonitor& monitor;
};

// op "status": hv::StatusJson; "live" (since, after): hv::LiveJson; "set"
// (name, weight, min_bytes, max_bytes; uid 0); "vm-attach" (name, qmp, pid,
// weight, min_bytes, max_bytes; uid 0). Anything else is EINVAL.
nlohmann::json HandleHvRequest(HvService& s, const nlohmann::json& request, const Peer& peer);

// GET /live?since=MS&after=SEQ for the web page; 400 for arguments that
// are not numbers.
HttpBody HvLivePage(const HvService& s, const HttpQuery& query);

// Now, in milliseconds since the epoch: the time the history keeps.
int64_t UnixMs();

}  // namespace cmm::ctl
