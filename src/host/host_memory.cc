#include "host/host_memory.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

// "MemAvailable:   123456 kB" -> bytes.
std::optional<uint64_t> Field(std::string_view text, std::string_view key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string_view::npos) {
    if ((at == 0 || text[at - 1] == '\n') && at + key.size() < text.size() && text[at + key.size()] == ':') break;
    at += key.size();
  }
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + key.size() + 1);
  rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
  uint64_t kb = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), kb);
  if (ec != std::errc() || std::string_view(end, rest.data() + rest.size()).substr(0, 3) != " kB") return std::nullopt;
  return kb * 1024;
}

std::optional<std::string> Slurp(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

Result<HostMemory> ParseMeminfo(std::string_view text) {
  const auto total = Field(text, "MemTotal");
  const auto available = Field(text, "MemAvailable");
  if (!total || !available) return Fail(ErrorCode::kProtocol, "no MemTotal/MemAvailable lines in kB");
  return HostMemory{*total, *available, std::nullopt};
}

std::optional<double> ParsePressureAvg10(std::string_view text) {
  if (text.substr(0, 5) != "some ") return std::nullopt;
  const size_t at = text.find("avg10=");
  if (at == std::string_view::npos) return std::nullopt;
  const std::string number(text.substr(at + 6, text.find(' ', at) - at - 6));
  double v = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  if (ec != std::errc() || end != number.data() + number.size() || v < 0 || v > 100) return std::nullopt;
  return v;
}

Result<HostMemory> ReadHostMemory(const std::string& meminfo, const std::string& pressure) {
  const auto text = Slurp(meminfo);
  if (!text) return Fail(ErrorCode::kIo, fmt::format("cannot read {}", meminfo));
  auto host = ParseMeminfo(*text);
  if (!host) return tl::unexpected(host.error().Within(meminfo));
  if (const auto psi = Slurp(pressure)) host->pressure_avg10 = ParsePressureAvg10(*psi);
  return host;
}

Bytes AutoPoolBytes(const HostMemory& host, Bytes partitions_backing, Bytes reserve) {
  const Bytes usable = FromUnsigned<Bytes>(host.available_bytes) + partitions_backing;
  Bytes pool = std::max(usable - reserve, Bytes(0));
  if (host.pressure_avg10 && *host.pressure_avg10 >= 5.0) {
    const double cut = std::min(0.5, 2 * *host.pressure_avg10 / 100.0);
    pool = Bytes(static_cast<int64_t>(static_cast<double>(pool.value()) * (1.0 - cut)));
  }
  return pool;
}

}  // namespace cmm::hv
