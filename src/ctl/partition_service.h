// The control requests a running partition answers: status, and reading
// and writing the driver's files with the kernel's rules.
#pragma once

#include <nlohmann/json.hpp>

#include "ctl/partition_status.h"
#include "ctl/server.h"
#include "guest/partition.h"

namespace cmm::ctl {

// Which boot of a partition that `cmm guest` restarts in place.
struct BootRecord {
  uint64_t number = 1;
  int64_t restart_returned_pages = -1;  // none yet
};

// Requests:
//   {"op":"status"}                                 -> PartitionStatus, with "ok
//   {"op":"files"}                                  -> names, groups, modes
//   {"op":"read","group":G,"file":F}                -> {"text":...}
//   {"op":"write","group":G,"file":F,"text":T}
//   {"op":"mem_add","bytes":N}                      -> hot-add memory blocks
// G is "device" (/sys/devices/system/cmm/cmm0) or "parameters"
// (/sys/module/cmm/parameters).
nlohmann::json HandlePartitionRequest(guest::Partition& p, const nlohmann::json& request, const Peer& peer,
                                      const BootRecord& boot = {});

}  // namespace cmm::ctl
