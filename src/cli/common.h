// Shared pieces of the `cmm` subcommands: user errors, sizes, exit codes.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/size_text.h"

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

using cmm::FormatBytes;
using cmm::ParseSize;

}  // namespace cmm::cli
