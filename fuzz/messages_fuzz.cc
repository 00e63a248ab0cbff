// libFuzzer target for the wire decoder: any packet either is refused with
// a reason or decodes to a message that encodes back to the same bytes and
// decodes again to the same message. Never a crash, a leak or UB (built
// with ASan and UBSan).
#include <cstdint>
#include <cstdlib>
#include <span>

#include "proto/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto decoded = cmm::proto::Decode(std::span<const uint8_t>(data, size));
  if (!decoded) {
    if (decoded.error().empty()) std::abort();  // every refusal says why
    return 0;
  }
  const std::vector<uint8_t> encoded = cmm::proto::Encode(*decoded);
  if (encoded.size() != size || !std::equal(encoded.begin(), encoded.end(), data)) std::abort();
  const auto again = cmm::proto::Decode(encoded);
  if (!again || !(*again == *decoded)) std::abort();
  return 0;
}
