#include "ctl/hv_service.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "core/json_fields.h"
#include "core/names.h"
#include "hv/status.h"

namespace cmm::ctl {

using json = nlohmann::json;

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

json StatusOf(const hv::Pool& pool) {
  json s = hv::StatusJson(pool);
  s["ok"] = true;
  return s;
}

// `since` (unix ms) and `after` (an event's seq), absent: everything kept.
std::optional<std::pair<int64_t, uint64_t>> LiveArgs(const std::string& since, const std::string& after) {
  int64_t t = 0;
  uint64_t seq = 0;
  auto number = [](const std::string& text, auto& out) {
    if (text.empty()) return true;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
  };
  if (!number(since, t) || !number(after, seq)) return std::nullopt;
  return std::make_pair(t, seq);
}

// The operator's terms in a request: each field absent, or an unsigned
// number within its limit; a name is given to the error otherwise.
Result<hv::SettingsChange> TermsOf(const json& req) {
  hv::SettingsChange change;
  auto field = [&req](const char* key, uint64_t limit) -> Result<std::optional<uint64_t>> {
    if (Field(req, key) == nullptr) return std::nullopt;
    const auto v = UnsignedField(req, key);
    if (!v || *v > limit) return Fail(ErrorCode::kInvalid, fmt::format("\"{}\" is out of range", key));
    return *v;
  };
  const auto w = field("weight", 255);
  const auto min = field("min_bytes", UINT64_MAX);
  const auto max = field("max_bytes", UINT64_MAX);
  for (const auto* r : {&w, &min, &max}) {
    if (!*r) return tl::unexpected(r->error());
  }
  if (*w) change.weight = static_cast<uint8_t>(**w);
  if (*min) change.min_bytes = FromUnsigned<Bytes>(**min);
  if (*max) change.max_bytes = FromUnsigned<Bytes>(**max);
  return change;
}

json Configure(hv::Pool& pool, const json& req, const Peer& peer) {
  const auto name = StringField(req, "name");
  if (!name) return ErrorReply(EINVAL, "set needs a string \"name\"");
  if (!peer.admin()) return ErrorReply(EPERM, "changing a partition's weight, min or max needs uid 0");
  const auto change = TermsOf(req);
  if (!change) return ErrorReply(change.error());
  auto s = pool.Configure(*name, *change);
  if (!s) return ErrorReply(s.error());
  return {{"ok", true},
          {"weight", s->weight},
          {"min_bytes", AsUnsigned(s->min_bytes)},
          {"max_bytes", AsUnsigned(s->max_bytes)}};
}

// `cmm vm attach` / `cmm vm run`: a QEMU joins the pool through its QMP socket.
json AttachVm(hv::VmAdapter& vms, const json& req, const Peer& peer) {
  if (!peer.admin()) return ErrorReply(EPERM, "adding a VM to the pool needs uid 0");
  const auto name = StringField(req, "name");
  const auto qmp = StringField(req, "qmp");
  if (!name || !qmp) return ErrorReply(EINVAL, "vm-attach needs a string \"name\" and \"qmp\"");
  if (!ValidName(*name)) {
    return ErrorReply(EINVAL, fmt::format("VM name \"{}\" is not valid: use {}", Printable(*name), kNameRule));
  }
  hv::VmOptions o;
  o.name = *name;
  o.qmp_path = *qmp;
  if (Field(req, "pid") != nullptr) {
    const auto pid = UnsignedField(req, "pid");
    if (!pid || *pid > static_cast<uint64_t>(INT32_MAX)) return ErrorReply(EINVAL, "\"pid\" is out of range");
    o.pid = static_cast<pid_t>(*pid);
  }
  const auto terms = TermsOf(req);
  if (!terms) return ErrorReply(terms.error());
  hv::MemberSettings settings;
  settings.weight = terms->weight.value_or(0);
  settings.min_bytes = terms->min_bytes.value_or(Bytes(0));
  settings.max_bytes = terms->max_bytes.value_or(Bytes(0));
  auto vm = vms.Attach(o, settings);
  if (!vm) return ErrorReply(vm.error());
  const hv::MemberState st = (*vm)->Observe();
  return {{"ok", true},          {"name", o.name},
          {"pid", (*vm)->pid()}, {"ram_bytes", AsUnsigned(st.ram_bytes)},
          {"qemu", (*vm)->qemu_version()}, {"backing_source", st.backing_source},
          {"backing_bytes", AsUnsigned(st.backing_bytes)}};
}

}  // namespace

json HandleHvRequest(HvService& s, const json& req, const Peer& peer) {
  const std::string op = StringField(req, "op").value_or("");
  if (op == "status") return StatusOf(s.pool);
  if (op == "live") {
    const bool bad_since = Field(req, "since") != nullptr && !SignedField(req, "since");
    const bool bad_after = Field(req, "after") != nullptr && !UnsignedField(req, "after");
    if (bad_since || bad_after) {
      return ErrorReply(EINVAL, "live: \"since\" (unix ms) and \"after\" (an event's seq) are numbers");
    }
    json live = hv::LiveJson(s.pool, s.monitor, UnixMs(), SignedField(req, "since").value_or(0),
                             UnsignedField(req, "after").value_or(0));
    live["ok"] = true;
    return live;
  }
  if (op == "set") return Configure(s.pool, req, peer);
  if (op == "vm-attach") return AttachVm(s.vms, req, peer);
  return ErrorReply(EINVAL, fmt::format("unknown request \"{}\"", Printable(op)));
}

HttpBody HvLivePage(const HvService& s, const HttpQuery& q) {
  auto value = [&q](const char* key) { return q.contains(key) ? q.at(key) : std::string(); };
  const auto args = LiveArgs(value("since"), value("after"));
  if (!args) return HttpBody{"text/plain", "400 since (unix ms) and after (an event's seq) are numbers\n", 400};
  return HttpBody{"application/json", hv::LiveJson(s.pool, s.monitor, UnixMs(), args->first, args->second).dump() + "\n"};
}

}  // namespace cmm::ctl
