// What the project's guest image (scripts/make-guest-image) reads from its
// kernel command line: the workload program's specs (cmm.workload=) and
// files for /etc/cmm (cmm.file.NAME=BASE64). `cmm vm run` boots QEMU with
// it and `cmm demo --libvirt` puts it in a domain's <cmdline>. Pure.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"

namespace cmm::vm {

struct GuestFile {
  std::string name;  // under /etc/cmm, no slash
  std::string text;
};

// x86 kernels keep 2048 bytes of command line; the console flags need some.
constexpr size_t kMaxGuestCmdline = 1900;

std::string Base64(const std::string& in);

// `base` followed by the workloads and the files. kInvalid, with the
// reason, for a spec with a space or comma, a file name with a slash or
// space, or a line longer than the kernel keeps.
Result<std::string> GuestCmdline(std::string base, const std::vector<std::string>& workloads,
                                 const std::vector<GuestFile>& files);

}  // namespace cmm::vm
