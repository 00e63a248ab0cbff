// The framing of a QMP stream: bytes in as they arrive, whole JSON objects
// out. QEMU writes one object per line, or spread over lines when its
// monitor pretty-prints; an object ends where its outermost brace closes.
// What a peer may make it hold is bounded: a message's size and its nesting
// depth. Pure (no I/O), so it is fuzzed on its own.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace cmm::hv {

class QmpStream {
 public:
  static constexpr size_t kMaxMessage = size_t{1} << 20;  // bytes
  static constexpr int kMaxDepth = 32;                     // nested objects and lists

  void Append(std::string_view bytes) { buffer_.append(bytes); }
  // The next whole message, parsed; nullopt when none is whole yet. An
  // error (kProtocol: not a JSON object, too large, too deep) leaves the
  // stream unusable: a peer that said that is not followed further.
  Result<std::optional<nlohmann::json>> Take();
  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
  size_t scanned_ = 0;  // bytes of the current message already scanned
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
};

}  // namespace cmm::hv
