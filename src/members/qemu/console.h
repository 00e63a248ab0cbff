// What a guest printed on its serial console that cmm reads back: the last
// report of the workload running inside (cmm-vm-workload, once a second)
// with its integrity errors, and the processes the guest kernel killed for
// want of memory. Used by `cmm vm run` and by the demo.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cmm::vm {

struct ConsoleReading {
  std::optional<std::string> workload_report;  // the last "cmm-workload: ..." line, without the prefix
  uint64_t integrity_errors = 0;                // as that report counts them
  uint64_t oom_kills = 0;                       // "Out of memory: Killed process" lines
};

ConsoleReading ParseConsole(std::string_view text);  // pure
ConsoleReading ReadConsole(const std::string& serial_log);

}  // namespace cmm::vm
