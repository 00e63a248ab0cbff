// The client side of a control endpoint.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

#include "core/error.h"

namespace cmm::ctl {

// Sends one request and returns the reply (which may itself say ok=false).
// kUnavailable: nobody listens at the path.
// `timeout` bounds the sending and, again, the wait for the reply.
Result<nlohmann::json> Call(const std::string& socket_path, const nlohmann::json& request,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace cmm::ctl
