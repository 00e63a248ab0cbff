#include "core/control_files.h"

#include <array>
#include <cerrno>
#include <limits>

#include "core/controller.h"
#include "core/ktext.h"

namespace cmm {

namespace {

constexpr uint64_t kUintMax = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kUlongMax = std::numeric_limits<uint64_t>::max();

constexpr std::array<FileInfo, 11> kFiles{{
    {"delay", FileGroup::kParameters, 0644},
    {"hotplug_delay", FileGroup::kParameters, 0644},
    {"oom_kb", FileGroup::kParameters, 0644},
    {"min_mem_mb", FileGroup::kParameters, 0644},
    {"debug", FileGroup::kParameters, 0644},
    {"simulate", FileGroup::kParameters, 0444},
    {"disable", FileGroup::kParameters, 0644},
    {"loaned_kb", FileGroup::kDevice, 0444},
    {"loaned_target_kb", FileGroup::kDevice, 0444},
    {"oom_freed_kb", FileGroup::kDevice, 0644},
    {"simulate_loan_target_kb", FileGroup::kDevice, 0644},
}};

// Parses a uint/ulong parameter and stores it; the value is unchanged on error.
template <class T>
tl::expected<size_t, int> StoreUnsigned(std::atomic<T>& field, std::string_view text, uint64_t max) {
  const auto v = ktext::ParseUnsigned(text, max);
  if (!v) return tl::unexpected(v.error());
  field.store(static_cast<T>(*v));
  return text.size();
}

}  // namespace

std::vector<std::string_view> ParamNames() {
  std::vector<std::string_view> names;
  for (const auto& f : kFiles) {
    if (f.group == FileGroup::kParameters) names.push_back(f.name);
  }
  return names;
}

std::vector<FileInfo> ControlFiles::List() const {
  std::vector<FileInfo> out;
  for (const auto& f : kFiles) {
    if (Exists(f.name)) out.push_back(f);
  }
  return out;
}

std::vector<FileInfo> ControlFiles::List(FileGroup group) const {
  std::vector<FileInfo> out;
  for (const auto& f : List()) {
    if (f.group == group) out.push_back(f);
  }
  return out;
}

bool ControlFiles::Exists(std::string_view name) const {
  if (name == "simulate_loan_target_kb") return c_.params().simulate;
  for (const auto& f : kFiles) {
    if (f.name == name) return true;
  }
  return false;
}

tl::expected<std::string, int> ControlFiles::Read(std::string_view name) const {
  if (!Exists(name)) return tl::unexpected(ENOENT);
  const Params& p = c_.params();
  const PageGeometry g = c_.geometry();
  if (name == "delay") return ktext::Decimal(p.delay.load());
  if (name == "hotplug_delay") return ktext::Decimal(p.hotplug_delay.load());
  if (name == "oom_kb") return ktext::Decimal(p.oom_kb.load());
  if (name == "min_mem_mb") return ktext::Decimal(p.min_mem_mb.load());
  if (name == "debug") return ktext::Decimal(p.debug.load());
  if (name == "simulate") return ktext::YesNo(p.simulate);
  if (name == "disable") return ktext::Decimal(c_.disabled() ? 1 : 0);
  if (name == "loaned_kb") return ktext::Decimal(g.PagesToKb(c_.loaned()));
  if (name == "loaned_target_kb") return ktext::Decimal(g.PagesToKb(c_.loaned_target()));
  if (name == "oom_freed_kb") return ktext::Decimal(g.PagesToKb(c_.oom_freed()));
  return ktext::Hex(p.simulate_loan_target_kb.load());  // simulate_loan_target_kb: "%lx"
}

tl::expected<size_t, int> ControlFiles::Write(std::string_view name, std::string_view text, const Writer& writer) {
  if (!Exists(name)) return tl::unexpected(ENOENT);
  Params& p = c_.params();
  if (name == "delay") return StoreUnsigned(p.delay, text, kUintMax);
  if (name == "hotplug_delay") return StoreUnsigned(p.hotplug_delay, text, kUintMax);
  if (name == "oom_kb") return StoreUnsigned(p.oom_kb, text, kUintMax);
  if (name == "min_mem_mb") return StoreUnsigned(p.min_mem_mb, text, kUlongMax);
  if (name == "debug") return StoreUnsigned(p.debug, text, kUintMax);
  if (name == "simulate_loan_target_kb") return StoreUnsigned(p.simulate_loan_target_kb, text, kUlongMax);
  if (name == "disable") {
    const int rc = c_.WriteDisable(text);
    if (rc != 0) return tl::unexpected(rc);
    return text.size();
  }
  if (name == "oom_freed_kb") {
    const uint64_t value = ktext::SimpleStrtoul10(text);
    if (!writer.admin) return tl::unexpected(EPERM);
    if (value != 0) return tl::unexpected(EBADMSG);
    c_.ResetOomFreed();
    return text.size();
  }
  return tl::unexpected(EACCES);  // simulate, loaned_kb, loaned_target_kb: read-only
}

}  // namespace cmm
