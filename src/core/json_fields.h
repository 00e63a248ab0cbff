// Typed, non-throwing reads of JSON that came from the other side of a
// trust boundary (QMP, a control request). Each getter checks the type and
// the range and fails with a reason naming the field, where nlohmann's
// value() and get<>() would throw; a peer's bytes reach a message only as
// printable text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cmm {

// A peer's bytes fit for a log line or a JSON reply: printable ASCII as it
// is, anything else as \xNN, cut to `max` bytes with "..." after.
std::string Printable(std::string_view bytes, size_t max = 80);
// A JSON value as such text; never throws (bad UTF-8 inside is escaped).
std::string Excerpt(const nlohmann::json& value, size_t max = 80);

// One field of an object: null when `value` is no object or has no such key.
const nlohmann::json* Field(const nlohmann::json& value, std::string_view key);
// The field as a non-negative integer that fits 64 bits; kProtocol naming
// the field when it is missing, of another type, negative or too large.
Result<uint64_t> UnsignedField(const nlohmann::json& value, std::string_view key);
Result<int64_t> SignedField(const nlohmann::json& value, std::string_view key);
Result<std::string> StringField(const nlohmann::json& value, std::string_view key);
Result<bool> BoolField(const nlohmann::json& value, std::string_view key);

}  // namespace cmm
