#include "members/qemu/qmp_decode.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace cmm::hv {

namespace {

using json = nlohmann::json;

// No machine QEMU emulates addresses more than 2^52 bytes of RAM.
constexpr uint64_t kMaxRam = uint64_t{1} << 52;
// QEMU's word for a count the guest has not reported.
constexpr uint64_t kNotReported = std::numeric_limits<uint64_t>::max();

}  // namespace

Result<QmpMessage> DecodeMessage(json message) {
  if (!message.is_object()) return Fail(ErrorCode::kProtocol, "not a JSON object: " + Excerpt(message));
  QmpMessage m;
  if (Field(message, "event") != nullptr) {
    auto name = StringField(message, "event");
    if (!name) return Fail(ErrorCode::kProtocol, "an event without a name: " + Excerpt(message));
    m.kind = QmpMessage::Kind::kEvent;
    m.event = std::move(*name);
    if (json* d = message.is_object() && message.contains("data") ? &message["data"] : nullptr) {
      if (!d->is_object()) return Fail(ErrorCode::kProtocol, fmt::format("event {} with data that is no object", m.event));
      m.data = std::move(*d);
    }
    return m;
  }
  auto id = UnsignedField(message, "id");
  if (!id) return Fail(ErrorCode::kProtocol, "a reply without a command's id: " + Excerpt(message));
  m.id = *id;
  if (auto it = message.find("return"); it != message.end()) {
    m.kind = QmpMessage::Kind::kReturn;
    m.data = std::move(*it);
    return m;
  }
  if (const json* e = Field(message, "error"); e != nullptr && e->is_object()) {
    m.kind = QmpMessage::Kind::kError;
    m.error_class = StringField(*e, "class").value_or("GenericError");
    m.error_desc = Printable(StringField(*e, "desc").value_or("refused"), 200);
    return m;
  }
  return Fail(ErrorCode::kProtocol, "a reply with neither return nor error: " + Excerpt(message));
}

Result<std::string> DecodeGreeting(const json& greeting) {
  const json* qmp = Field(greeting, "QMP");
  if (qmp == nullptr || !qmp->is_object()) return Fail(ErrorCode::kProtocol, "not a QMP greeting: " + Excerpt(greeting));
  const json* version = Field(*qmp, "version");
  const json* qemu = version != nullptr ? Field(*version, "qemu") : nullptr;
  if (qemu == nullptr) return std::string();  // a greeting that does not say; nothing depends on it
  auto major = UnsignedField(*qemu, "major");
  auto minor = UnsignedField(*qemu, "minor");
  auto micro = UnsignedField(*qemu, "micro");
  if (!major || !minor || !micro) return Fail(ErrorCode::kProtocol, "a QMP greeting with a bad version: " + Excerpt(*qemu));
  return fmt::format("{}.{}.{}", *major, *minor, *micro);
}

Result<uint64_t> DecodeMemorySize(const json& ret) {
  auto base = UnsignedField(ret, "base-memory");
  if (!base) return tl::unexpected(base.error().Within("query-memory-size-summary"));
  uint64_t plugged = 0;
  if (Field(ret, "plugged-memory") != nullptr) {
    auto p = UnsignedField(ret, "plugged-memory");
    if (!p) return tl::unexpected(p.error().Within("query-memory-size-summary"));
    plugged = *p;
  }
  if (*base > kMaxRam || plugged > kMaxRam - *base) {
    return Fail(ErrorCode::kProtocol, fmt::format("query-memory-size-summary: {} + {} bytes is more RAM than a machine has",
                                                  *base, plugged));
  }
  if (*base + plugged < 4096) return Fail(ErrorCode::kProtocol, "query-memory-size-summary: no guest memory");
  return *base + plugged;
}

Result<uint64_t> DecodeBalloonActual(const json& value, uint64_t ram) {
  auto actual = UnsignedField(value, "actual");
  if (!actual) return tl::unexpected(actual.error().Within("the balloon's state"));
  if (*actual > ram) {
    return Fail(ErrorCode::kProtocol,
                fmt::format("the balloon's state: actual {} bytes is more than the VM's {} bytes of RAM", *actual, ram));
  }
  return *actual;
}

Result<std::vector<QomEntry>> DecodeQomList(const json& ret) {
  if (!ret.is_array()) return Fail(ErrorCode::kProtocol, "qom-list: not a list: " + Excerpt(ret));
  std::vector<QomEntry> out;
  for (const json& e : ret) {
    auto name = StringField(e, "name");
    auto type = StringField(e, "type");
    if (!name || !type) return Fail(ErrorCode::kProtocol, "qom-list: an entry without name and type: " + Excerpt(e));
    out.push_back({std::move(*name), std::move(*type)});
  }
  return out;
}

Result<GuestStats> DecodeGuestStats(const json& ret, uint64_t ram) {
  GuestStats g;
  auto update = SignedField(ret, "last-update");
  if (!update || *update < 0) return Fail(ErrorCode::kProtocol, "guest-stats: a bad last-update: " + Excerpt(ret));
  g.last_update = *update;
  const json* stats = Field(ret, "stats");
  if (stats == nullptr || !stats->is_object()) {
    return Fail(ErrorCode::kProtocol, "guest-stats: no stats object: " + Excerpt(ret));
  }
  struct Count {
    const char* key;
    std::optional<uint64_t> GuestStats::*field;
    bool is_bytes;
  };
  static constexpr Count kCounts[] = {
      {"stat-total-memory", &GuestStats::total, true},
      {"stat-free-memory", &GuestStats::free, true},
      {"stat-available-memory", &GuestStats::available, true},
      {"stat-disk-caches", &GuestStats::disk_caches, true},
      {"stat-major-faults", &GuestStats::major_faults, false},
      {"stat-swap-in", &GuestStats::swap_in, false},
  };
  for (const Count& c : kCounts) {
    if (Field(*stats, c.key) == nullptr) continue;
    auto v = UnsignedField(*stats, c.key);
    if (!v) return tl::unexpected(v.error().Within("guest-stats"));
    if (*v == kNotReported) continue;
    g.*c.field = c.is_bytes ? std::min(*v, ram) : *v;
  }
  return g;
}

}  // namespace cmm::hv
