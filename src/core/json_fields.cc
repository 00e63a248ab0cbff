#include "core/json_fields.h"

#include <limits>

#include <fmt/format.h>

namespace cmm {

namespace {

using json = nlohmann::json;

Error Bad(std::string_view key, const json* v) {
  return Error{ErrorCode::kProtocol, v == nullptr ? fmt::format("no \"{}\"", key)
                                                  : fmt::format("\"{}\" is {}", key, Excerpt(*v, 40))};
}

}  // namespace

std::string Printable(std::string_view bytes, size_t max) {
  std::string out;
  for (const char c : bytes.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

std::string Excerpt(const json& value, size_t max) {
  return Printable(value.dump(-1, ' ', true, json::error_handler_t::replace), max);
}

const json* Field(const json& value, std::string_view key) {
  if (!value.is_object()) return nullptr;
  const auto it = value.find(key);
  return it == value.end() ? nullptr : &*it;
}

Result<uint64_t> UnsignedField(const json& value, std::string_view key) {
  const json* v = Field(value, key);
  if (v != nullptr) {
    if (const auto* u = v->get_ptr<const json::number_unsigned_t*>()) return *u;
    // A non-negative number stored signed (nlohmann keeps some that way).
    if (const auto* i = v->get_ptr<const json::number_integer_t*>(); i != nullptr && *i >= 0) {
      return static_cast<uint64_t>(*i);
    }
  }
  return tl::unexpected(Bad(key, v));
}

Result<int64_t> SignedField(const json& value, std::string_view key) {
  const json* v = Field(value, key);
  if (v != nullptr) {
    if (const auto* i = v->get_ptr<const json::number_integer_t*>()) return *i;
    if (const auto* u = v->get_ptr<const json::number_unsigned_t*>();
        u != nullptr && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  return tl::unexpected(Bad(key, v));
}

Result<std::string> StringField(const json& value, std::string_view key) {
  const json* v = Field(value, key);
  if (v != nullptr) {
    if (const auto* s = v->get_ptr<const json::string_t*>()) return *s;
  }
  return tl::unexpected(Bad(key, v));
}

Result<bool> BoolField(const json& value, std::string_view key) {
  const json* v = Field(value, key);
  if (v != nullptr) {
    if (const auto* b = v->get_ptr<const json::boolean_t*>()) return *b;
  }
  return tl::unexpected(Bad(key, v));
}

}  // namespace cmm
