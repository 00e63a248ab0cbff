// A request to the hypervisor's control socket, as `cmm hv status|set` and
// `cmm vm` send it: no hypervisor answering, or a refusal, is one line.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace cmm::cli {

// Puts the size `text` given to `flag` into request[key]; nothing when it
// is empty; a usage error naming the flag (and `example`) when it is not a size.
void PutSize(nlohmann::json& request, const char* key, const char* flag, const std::string& text, const char* example);

// `what` names the request in a refusal ("cmm hv set web1").
// `timeout` is the client's wait; a VM's attach takes up to its handshake's
// deadline (8 s) and is given more.
nlohmann::json CallHypervisor(const std::string& control, const nlohmann::json& request, const std::string& what,
                              std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace cmm::cli
