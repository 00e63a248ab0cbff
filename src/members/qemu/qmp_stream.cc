#include "members/qemu/qmp_stream.h"

#include <fmt/format.h>

#include "members/qemu/qmp_decode.h"

namespace cmm::hv {

Result<std::optional<nlohmann::json>> QmpStream::Take() {
  if (scanned_ == 0) {
    const size_t begin = buffer_.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos) {
      buffer_.clear();
      return std::nullopt;
    }
    buffer_.erase(0, begin);
    if (buffer_[0] != '{') {
      return Fail(ErrorCode::kProtocol,
                  "QMP sent something that is not a JSON object: " + Printable(buffer_.substr(0, buffer_.find_first_of("\r\n"))));
    }
  }
  // Scanning resumes where the last call stopped, so a message that comes
  // in many small pieces costs its length once, not once a piece.
  for (size_t i = scanned_; i < buffer_.size(); ++i) {
    const char ch = buffer_[i];
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (ch == '\\') {
        escaped_ = true;
      } else if (ch == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (ch == '"') in_string_ = true;
    if (ch == '{' || ch == '[') {
      if (++depth_ > kMaxDepth) return Fail(ErrorCode::kProtocol, fmt::format("QMP sent a message nested over {} deep", kMaxDepth));
    }
    if ((ch == '}' || ch == ']') && --depth_ == 0) {
      const std::string text = buffer_.substr(0, i + 1);
      buffer_.erase(0, i + 1);
      scanned_ = 0;
      auto m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (m.is_discarded() || !m.is_object()) {
        return Fail(ErrorCode::kProtocol, "QMP sent something that is not a JSON object: " + Printable(text));
      }
      return std::optional<nlohmann::json>(std::move(m));
    }
    if (depth_ < 0) return Fail(ErrorCode::kProtocol, "QMP sent something that is not a JSON object: " + Printable(buffer_));
  }
  scanned_ = buffer_.size();
  if (buffer_.size() > kMaxMessage) {
    return Fail(ErrorCode::kProtocol, fmt::format("QMP sent a message of over {} MiB", kMaxMessage >> 20));
  }
  return std::nullopt;
}

}  // namespace cmm::hv
