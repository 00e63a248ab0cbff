// Where control sockets live: $CMM_RUN_DIR, else $XDG_RUNTIME_DIR/cmm,
// else /run/cmm for root, else /tmp/cmm-<uid>.
#pragma once

#include <string>

#include <tl/expected.hpp>

namespace cmm::ctl {

std::string RunDir();
std::string SocketPathFor(const std::string& partition);
// Creates the directory (mode 0700) if it is missing.
tl::expected<void, std::string> EnsureDir(const std::string& dir);
// A partition name: 1-64 of [A-Za-z0-9_.-], not starting with '.' or '-'.
bool ValidName(const std::string& name);

}  // namespace cmm::ctl
