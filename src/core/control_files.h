// The driver's files as text, with the kernel's names, modes, formats and
// errnos: module parameters (S1, S8) and device attributes (S7).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

namespace cmm {

class Controller;

enum class FileGroup : uint8_t {
  kParameters,  // /sys/module/cmm/parameters/
  kDevice,      // /sys/devices/system/cmm/cmm0/
};

struct FileInfo {
  std::string_view name;
  FileGroup group;
  uint32_t mode;  // 0644 or 0444
};

// Who writes: an administrator has CAP_SYS_ADMIN (over the control socket:
// the peer is uid 0).
struct Writer {
  bool admin = false;
};

// The module parameters' names, in the kernel's order (what
// SetParamAtStart accepts).
std::vector<std::string_view> ParamNames();

class ControlFiles {
 public:
  explicit ControlFiles(Controller& c) : c_(c) {}

  // The files that exist now; simulate_loan_target_kb only in simulate mode.
  std::vector<FileInfo> List() const;
  std::vector<FileInfo> List(FileGroup group) const;
  bool Exists(std::string_view name) const;

  // Errors are positive errnos: ENOENT for a file that does not exist.
  tl::expected<std::string, int> Read(std::string_view name) const;
  // On success the whole text is consumed: returns its length.
  tl::expected<size_t, int> Write(std::string_view name, std::string_view text, const Writer& writer);

 private:
  Controller& c_;
};

}  // namespace cmm
