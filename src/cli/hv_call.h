// A request to the hypervisor's control socket, as `cmm hv status|set` and
// `cmm vm` send it: no hypervisor answering, or a refusal, is one line.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace cmm::cli {

// `what` names the request in a refusal ("cmm hv set web1").
nlohmann::json CallHypervisor(const std::string& control, const nlohmann::json& request, const std::string& what);

}  // namespace cmm::cli
