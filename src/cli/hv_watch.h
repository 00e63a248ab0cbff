// `cmm hv watch`: the whole pool, live, like virt-top.
#pragma once

#include <string>

namespace cmm::cli {

struct HvWatchOptions {
  std::string control;     // the hypervisor's control socket
  double interval_s = 1.0;
  int count = 0;           // refreshes before it ends; 0: until q or Ctrl-C
  std::string sort = "name";
};

int HvWatch(const HvWatchOptions& o);

}  // namespace cmm::cli
