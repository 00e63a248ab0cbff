// libFuzzer target for what a QEMU monitor sends: bytes, cut into pieces
// as reads would cut them, through the QMP framing into messages, and each
// message through every decoder the VM adapter uses. Nothing may throw or
// crash; every refusal says why; what a decoder accepts keeps its promises
// (the balloon within the RAM, guest stats clamped to it, text printable).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fuzzer/FuzzedDataProvider.h>

#include "members/qemu/qmp_decode.h"
#include "members/qemu/qmp_stream.h"

#include "check.h"

namespace {

using cmm::hv::QmpMessage;

bool IsPrintable(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

template <class R>
void Refusal(const R& r) {
  if (!r) Check(!r.error().message.empty() && IsPrintable(r.error().message));
}

void Decode(const nlohmann::json& m, uint64_t ram) {
  auto msg = cmm::hv::DecodeMessage(m);
  Refusal(msg);
  Refusal(cmm::hv::DecodeGreeting(m));
  const nlohmann::json& v = msg && msg->kind != QmpMessage::Kind::kError ? msg->data : m;
  if (msg && msg->kind == QmpMessage::Kind::kError) Check(IsPrintable(msg->error_desc));
  const auto size = cmm::hv::DecodeMemorySize(v);
  Refusal(size);
  if (size) Check(*size >= 4096 && *size <= (uint64_t{1} << 53));
  const auto actual = cmm::hv::DecodeBalloonActual(v, ram);
  Refusal(actual);
  if (actual) Check(*actual <= ram);
  Refusal(cmm::hv::DecodeQomList(v));
  const auto stats = cmm::hv::DecodeGuestStats(v, ram);
  Refusal(stats);
  if (stats) {
    for (const auto& c : {stats->total, stats->free, stats->available, stats->disk_caches}) Check(!c || *c <= ram);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint64_t ram = in.ConsumeIntegralInRange<uint64_t>(1, uint64_t{1} << 40);
  cmm::hv::QmpStream stream;
  while (in.remaining_bytes() > 0) {
    const std::string piece = in.ConsumeRandomLengthString(4096);
    stream.Append(piece);
    for (;;) {
      auto m = stream.Take();
      if (!m) {
        Refusal(m);
        return 0;  // the connection would be lost here
      }
      if (!*m) break;
      Check((*m)->is_object());
      Decode(**m, ram);
    }
    Check(stream.buffered() <= cmm::hv::QmpStream::kMaxMessage + 4096);
  }
  return 0;
}
