#include "hv/kept_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/json_fields.h"
#include "core/names.h"

namespace cmm::hv {

namespace {

using json = nlohmann::json;
constexpr uint64_t kVersion = 1;

Result<MemberSettings> TermsOf(const json& t) {
  auto weight = UnsignedField(t, "weight");
  auto min = UnsignedField(t, "min_bytes");
  auto max = UnsignedField(t, "max_bytes");
  if (!weight || *weight > 255) return Fail(ErrorCode::kProtocol, "a weight that is not 0-255");
  if (!min || !max) return Fail(ErrorCode::kProtocol, "terms without min_bytes and max_bytes");
  return MemberSettings{static_cast<uint8_t>(*weight), FromUnsigned<Bytes>(*min), FromUnsigned<Bytes>(*max)};
}

// Writes `text` to `path` so that a reader sees the old file or the new
// one: a temporary beside it, then renamed over it. No fsync: what it
// guards against is the daemon killed at any moment, which leaves the page
// cache whole (and the run directory is a tmpfs); the registration and
// control paths that change terms do not wait on the disk.
Result<void> WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Fail(ErrorCode::kIo, fmt::format("{}: {}", tmp, std::strerror(errno)));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      close(fd);
      return Fail(ErrorCode::kIo, fmt::format("{}: {}", tmp, std::strerror(e)));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return Fail(ErrorCode::kIo, fmt::format("{}: {}", tmp, std::strerror(errno)));
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return Fail(ErrorCode::kIo, fmt::format("{}: {}", path, std::strerror(errno)));
  }
  return {};
}

}  // namespace

std::string KeptStateText(const KeptState& s) {
  json terms = json::object();
  for (const auto& [name, t] : s.terms) {
    terms[name] = {{"weight", t.weight}, {"min_bytes", AsUnsigned(t.min_bytes)}, {"max_bytes", AsUnsigned(t.max_bytes)}};
  }
  json vms = json::array();
  for (const auto& [name, vm] : s.vms) vms.push_back({{"name", vm.name}, {"qmp", vm.qmp}, {"pid", vm.pid}});
  return json{{"version", kVersion}, {"terms", terms}, {"vms", vms}}.dump(1, ' ', false, json::error_handler_t::replace) +
         "\n";
}

Result<KeptState> ParseKeptState(const std::string& text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Fail(ErrorCode::kProtocol, "not a JSON object");
  if (UnsignedField(j, "version").value_or(0) != kVersion) {
    return Fail(ErrorCode::kProtocol, fmt::format("not version {} of the state", kVersion));
  }
  KeptState s;
  const json* terms = Field(j, "terms");
  const json* vms = Field(j, "vms");
  if (terms == nullptr || !terms->is_object() || vms == nullptr || !vms->is_array()) {
    return Fail(ErrorCode::kProtocol, "no \"terms\" object and \"vms\" list");
  }
  for (const auto& [name, t] : terms->items()) {
    if (!ValidName(name)) return Fail(ErrorCode::kProtocol, fmt::format("a member named \"{}\"", Printable(name)));
    auto settings = TermsOf(t);
    if (!settings) return Fail(ErrorCode::kProtocol, fmt::format("{}: {}", name, settings.error().message));
    s.terms.emplace(name, *settings);
  }
  for (const json& v : *vms) {
    auto name = StringField(v, "name");
    auto qmp = StringField(v, "qmp");
    auto pid = UnsignedField(v, "pid");
    if (!name || !ValidName(*name) || !qmp || qmp->empty() || !pid || *pid > INT32_MAX) {
      return Fail(ErrorCode::kProtocol, "a VM without a valid name, qmp socket and pid: " + Excerpt(v));
    }
    s.vms[*name] = KeptVm{*name, *qmp, static_cast<pid_t>(*pid)};
  }
  return s;
}

StateKeeper::StateKeeper(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_);
  if (!in) return;  // nothing kept yet
  std::stringstream text;
  text << in.rdbuf();
  auto s = ParseKeptState(text.str());
  if (!s) {
    const std::string aside = path_ + ".bad";
    (void)std::rename(path_.c_str(), aside.c_str());
    note_ = fmt::format("the state in {} could not be read ({}); it was set aside as {} and nothing is kept from "
                        "before",
                        path_, s.error().message, aside);
    spdlog::warn("hypervisor: {}", note_);
    return;
  }
  MutexLock lock(mu_);
  state_ = std::move(*s);
}

std::optional<MemberSettings> StateKeeper::Terms(const std::string& name) const {
  MutexLock lock(mu_);
  const auto it = state_.terms.find(name);
  if (it == state_.terms.end()) return std::nullopt;
  return it->second;
}

std::vector<KeptVm> StateKeeper::Vms() const {
  MutexLock lock(mu_);
  std::vector<KeptVm> out;
  for (const auto& [_, vm] : state_.vms) out.push_back(vm);
  return out;
}

void StateKeeper::SetTerms(const std::string& name, const MemberSettings& terms) {
  MutexLock lock(mu_);
  if (frozen_) return;
  const auto it = state_.terms.find(name);
  if (it != state_.terms.end() && it->second.weight == terms.weight && it->second.min_bytes == terms.min_bytes &&
      it->second.max_bytes == terms.max_bytes) {
    return;
  }
  state_.terms[name] = terms;
  WriteLocked();
}

void StateKeeper::AddVm(const KeptVm& vm) {
  MutexLock lock(mu_);
  if (frozen_) return;
  const auto it = state_.vms.find(vm.name);
  if (it != state_.vms.end() && it->second == vm) return;
  state_.vms[vm.name] = vm;
  WriteLocked();
}

void StateKeeper::Forget(const std::string& name) {
  MutexLock lock(mu_);
  if (frozen_) return;
  const bool had = state_.terms.erase(name) + state_.vms.erase(name) > 0;
  if (had) WriteLocked();
}

void StateKeeper::Freeze() {
  MutexLock lock(mu_);
  frozen_ = true;
}

void StateKeeper::WriteLocked() {
  // A failed write is said and the state kept in memory: the next change
  // writes it whole again.
  if (auto w = WriteAtomically(path_, KeptStateText(state_)); !w) {
    spdlog::warn("hypervisor: cannot keep the state: {}", w.error().message);
  }
}

}  // namespace cmm::hv
