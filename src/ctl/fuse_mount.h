// `cmm mount`: a partition's kernel files as a real directory (libfuse3).
// Every read and write becomes a request on the partition's control
// socket, so the files behave as the partition's attributes do: the same
// text, the same errno. Runs until SIGINT/SIGTERM, then unmounts.
#pragma once

#include <functional>
#include <string>

#include <tl/expected.hpp>

namespace cmm::ctl {

// Mounts at `dir` (an existing empty directory) and serves until a signal.
// The error says why it could not mount.
// `ready` runs once the mount is in place.
tl::expected<void, std::string> ServeKernelTree(const std::string& socket, const std::string& dir,
                                                const std::function<void()>& ready);

}  // namespace cmm::ctl
