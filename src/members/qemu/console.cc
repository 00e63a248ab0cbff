#include "members/qemu/console.h"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace cmm::vm {

namespace {

constexpr std::string_view kReport = "cmm-workload: ";
constexpr std::string_view kErrors = "integrity_errors=";
constexpr std::string_view kOomKill = "Out of memory: Killed process";

}  // namespace

ConsoleReading ParseConsole(std::string_view text) {
  ConsoleReading r;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    r.oom_kills += line.find(kOomKill) != std::string_view::npos;
    const size_t at = line.find(kReport);
    if (at == std::string_view::npos) continue;
    r.workload_report = std::string(line.substr(at + kReport.size()));
    const size_t e = line.find(kErrors);
    r.integrity_errors =
        e == std::string_view::npos ? 0 : std::strtoull(std::string(line.substr(e + kErrors.size())).c_str(), nullptr, 10);
  }
  return r;
}

ConsoleReading ReadConsole(const std::string& serial_log) {
  std::ifstream in(serial_log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseConsole(text);
}

}  // namespace cmm::vm
