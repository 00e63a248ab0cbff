#include "ctl/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace cmm::ctl {

std::string RunDir() {
  if (const char* d = std::getenv("CMM_RUN_DIR"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') return std::string(x) + "/cmm";
  if (geteuid() == 0) return "/run/cmm";
  return fmt::format("/tmp/cmm-{}", geteuid());
}

std::string SocketPathFor(const std::string& partition) { return RunDir() + "/" + partition + ".sock"; }

tl::expected<void, std::string> EnsureDir(const std::string& dir) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec) return tl::unexpected(fmt::format("cannot create {}: {}", dir, ec.message()));
  // Sockets live here: a directory we create is for its owner only.
  if (created) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  if (ec) return tl::unexpected(fmt::format("cannot restrict {} to its owner: {}", dir, ec.message()));
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return tl::unexpected(fmt::format("{} is not a directory", dir));
  }
  return {};
}

}  // namespace cmm::ctl
