// Shared pieces of the `cmm` subcommands: user errors, sizes, exit codes.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace cmm::cli {

inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// An error the user can fix: printed as one line, then exit with `code`.
class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what, int code = kExitError) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// "1G", "512M", "64K", "4096" (bytes); binary units. Empty on bad text.
std::optional<uint64_t> ParseSize(const std::string& text);
// "1.0 GiB", "256.0 MiB", "4 KiB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace cmm::cli
