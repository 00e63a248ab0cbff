// The client side of a control endpoint.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "core/error.h"

namespace cmm::ctl {

// Sends one request and returns the reply (which may itself say ok=false).
// kUnavailable: nobody listens at the path.
Result<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request);

}  // namespace cmm::ctl
