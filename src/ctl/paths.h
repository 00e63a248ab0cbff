// Where control sockets live: $CMM_RUN_DIR, else $XDG_RUNTIME_DIR/cmm,
// else /run/cmm for root, else /tmp/cmm-<uid>.
#pragma once

#include <string>

#include "core/names.h"

#include <tl/expected.hpp>

namespace cmm::ctl {

std::string RunDir();
std::string SocketPathFor(const std::string& partition);
// Creates the directory (mode 0700) if it is missing.
tl::expected<void, std::string> EnsureDir(const std::string& dir);
using cmm::ValidName;  // core/names.h

}  // namespace cmm::ctl
