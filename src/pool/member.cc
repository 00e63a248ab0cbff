#include "pool/member.h"

namespace cmm::hv {

std::string_view KindName(MemberKind kind) { return kind == MemberKind::kVm ? "vm" : "partition"; }

}  // namespace cmm::hv
