#include "papr/papr.h"

namespace cmm::papr {

std::string_view RcName(Rc rc) {
  switch (rc) {
    case kSuccess: return "H_SUCCESS";
    case kHardware: return "H_HARDWARE";
    case kFunction: return "H_FUNCTION";
    case kPrivilege: return "H_PRIVILEGE";
    case kParameter: return "H_PARAMETER";
    case kNotEnoughResources: return "H_NOT_ENOUGH_RESOURCES";
    default: return "H_UNKNOWN";
  }
}

}  // namespace cmm::papr
