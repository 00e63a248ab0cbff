// What QEMU sends, decoded once into typed values. A QMP monitor is on the
// guest's side of the trust boundary (a guest that escapes into QEMU owns
// it), so every field is read through a getter that checks its type and
// range and says what was wrong; nothing here throws, and numbers a guest
// reports are clamped to what its RAM makes possible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_fields.h"

namespace cmm::hv {

// One message of a QMP stream: an event, or a reply to a command (its
// return value, or QEMU's refusal), with the command's id.
struct QmpMessage {
  enum class Kind : uint8_t { kEvent, kReturn, kError };
  Kind kind = Kind::kReturn;
  std::string event;        // kEvent: its name
  nlohmann::json data;      // kEvent: its "data" (an object, or null); kReturn: the value
  uint64_t id = 0;          // kReturn, kError: the command's id
  std::string error_class;  // kError
  std::string error_desc;   // kError
};
Result<QmpMessage> DecodeMessage(nlohmann::json message);

// The greeting's QEMU version, "7.2.0"; kProtocol when it is no greeting.
Result<std::string> DecodeGreeting(const nlohmann::json& greeting);

// query-memory-size-summary: base plus plugged memory, in bytes (at least
// one page, and no more than a machine can address: 2^52).
Result<uint64_t> DecodeMemorySize(const nlohmann::json& ret);

// query-balloon and the BALLOON_CHANGE event: the guest memory now, in
// bytes, within [0, ram].
Result<uint64_t> DecodeBalloonActual(const nlohmann::json& value, uint64_t ram);

// qom-list: the entries' names and types.
struct QomEntry {
  std::string name;
  std::string type;
};
Result<std::vector<QomEntry>> DecodeQomList(const nlohmann::json& ret);

// The balloon device's guest-stats property. Each count is clamped to the
// VM's RAM (a guest that says it has 1 PiB free is not believed); QEMU's
// "not reported" (2^64 - 1) and a missing count read as absent.
struct GuestStats {
  int64_t last_update = 0;  // seconds since the epoch; 0: none yet
  std::optional<uint64_t> total, free, available, disk_caches, major_faults, swap_in;
};
Result<GuestStats> DecodeGuestStats(const nlohmann::json& ret, uint64_t ram);

}  // namespace cmm::hv
