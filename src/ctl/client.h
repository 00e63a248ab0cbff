// The client side of a control endpoint.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace cmm::ctl {

struct CallError {
  bool not_running;  // nobody listens at the path
  std::string message;
};

// Sends one request and returns the reply (which may itself say ok=false).
tl::expected<nlohmann::json, CallError> Call(const std::string& socket_path, const nlohmann::json& request);

}  // namespace cmm::ctl
