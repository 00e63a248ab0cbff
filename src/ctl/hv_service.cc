#include "ctl/hv_service.h"

#include <cerrno>
#include <charconv>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

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

json Configure(hv::Pool& pool, const json& req, const Peer& peer) {
  if (!req.contains("name") || !req["name"].is_string()) return ErrorReply(EINVAL, "set needs a string \"name\"");
  if (!peer.admin()) return ErrorReply(EPERM, "changing a partition's weight, min or max needs uid 0");
  hv::SettingsChange change;
  auto field = [&](const char* key, uint64_t limit) -> std::optional<uint64_t> {
    if (!req.contains(key)) return std::nullopt;
    if (!req[key].is_number_unsigned() || req[key].get<uint64_t>() > limit) throw std::invalid_argument(key);
    return req[key].get<uint64_t>();
  };
  try {
    if (auto w = field("weight", 255)) change.weight = static_cast<uint8_t>(*w);
    if (auto v = field("min_bytes", UINT64_MAX)) change.min_bytes = FromUnsigned<Bytes>(*v);
    if (auto v = field("max_bytes", UINT64_MAX)) change.max_bytes = FromUnsigned<Bytes>(*v);
  } catch (const std::invalid_argument& e) {
    return ErrorReply(EINVAL, fmt::format("\"{}\" is out of range", e.what()));
  }
  auto s = pool.Configure(req["name"], change);
  if (!s) return ErrorReply(s.error());
  return {{"ok", true},
          {"weight", s->weight},
          {"min_bytes", AsUnsigned(s->min_bytes)},
          {"max_bytes", AsUnsigned(s->max_bytes)}};
}

// `cmm vm attach` / `cmm vm run`: a QEMU joins the pool through its QMP socket.
json AttachVm(hv::VmAdapter& vms, const json& req, const Peer& peer) {
  if (!peer.admin()) return ErrorReply(EPERM, "adding a VM to the pool needs uid 0");
  if (!req.contains("name") || !req["name"].is_string() || !req.contains("qmp") || !req["qmp"].is_string()) {
    return ErrorReply(EINVAL, "vm-attach needs a string \"name\" and \"qmp\"");
  }
  if (!ValidName(req["name"].get<std::string>())) {
    return ErrorReply(EINVAL, fmt::format("VM name \"{}\" is not valid: use {}", req["name"].get<std::string>(),
                                          kNameRule));
  }
  hv::VmOptions o;
  o.name = req["name"];
  o.qmp_path = req["qmp"];
  o.pid = req.value("pid", 0);
  hv::MemberSettings settings;
  settings.weight = static_cast<uint8_t>(std::min(255, req.value("weight", 0)));
  settings.min_bytes = FromUnsigned<Bytes>(req.value("min_bytes", uint64_t{0}));
  settings.max_bytes = FromUnsigned<Bytes>(req.value("max_bytes", uint64_t{0}));
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
  const std::string op = req.value("op", "");
  if (op == "status") return StatusOf(s.pool);
  if (op == "live") {
    if ((req.contains("since") && !req["since"].is_number_integer()) ||
        (req.contains("after") && !req["after"].is_number_unsigned())) {
      return ErrorReply(EINVAL, "live: \"since\" (unix ms) and \"after\" (an event's seq) are numbers");
    }
    json live = hv::LiveJson(s.pool, s.monitor, UnixMs(), req.value("since", int64_t{0}), req.value("after", uint64_t{0}));
    live["ok"] = true;
    return live;
  }
  if (op == "set") return Configure(s.pool, req, peer);
  if (op == "vm-attach") return AttachVm(s.vms, req, peer);
  return ErrorReply(EINVAL, fmt::format("unknown request \"{}\"", op));
}

HttpBody HvLivePage(const HvService& s, const HttpQuery& q) {
  auto value = [&q](const char* key) { return q.contains(key) ? q.at(key) : std::string(); };
  const auto args = LiveArgs(value("since"), value("after"));
  if (!args) return HttpBody{"text/plain", "400 since (unix ms) and after (an event's seq) are numbers\n", 400};
  return HttpBody{"application/json", hv::LiveJson(s.pool, s.monitor, UnixMs(), args->first, args->second).dump() + "\n"};
}

}  // namespace cmm::ctl
