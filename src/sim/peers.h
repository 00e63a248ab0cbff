// The peers' balloon policies, for `cmm sim --policy` and `--compare`:
// each written from its own project's documented rules and constants
// (../shared/PEERS.md names the sources), with the pool as their host.
// Each is a decide function the real Pool runs in place of cmm's, on the
// peer's own interval; between its steps every target stays as it was.
//
// Where a peer has no notion of a member's floor (Qubes), the operator's
// min and max still bound its targets: they are the member's terms.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/policy.h"

namespace cmm::sim {

enum class PolicyKind : uint8_t { kCmm, kProxmox, kMom, kQubes };

std::string_view PolicyName(PolicyKind k);
std::optional<PolicyKind> PolicyByName(std::string_view name);
// All of them, cmm first: the order of `cmm sim --compare`.
std::vector<PolicyKind> AllPolicies();
// One line on where the policy comes from, for help and tables.
std::string_view PolicySource(PolicyKind k);

using DecideFn = std::function<hv::PolicyDecision(const hv::PolicyConfig&, std::span<const hv::PolicyInput>)>;

// The policy's decide function for a pool whose rounds are `period_s`
// apart. Peers keep a round count of their own: a fresh one per pool.
DecideFn MakePolicy(PolicyKind k, uint32_t period_s);

// The steps themselves, one round each (exposed for tests).
hv::PolicyDecision ProxmoxStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members);
hv::PolicyDecision MomStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members);
hv::PolicyDecision QubesStep(const hv::PolicyConfig& config, std::span<const hv::PolicyInput> members);

}  // namespace cmm::sim
