#include "pool/member.h"

namespace cmm::hv {

std::string_view KindName(MemberKind kind) {
  switch (kind) {
    case MemberKind::kVm: return "vm";
    case MemberKind::kDomain: return "domain";
    case MemberKind::kPartition: break;
  }
  return "partition";
}

}  // namespace cmm::hv
