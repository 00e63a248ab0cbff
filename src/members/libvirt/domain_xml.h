// The XML of a domain booted straight from the project's guest image
// (kernel, initrd and command line), as `cmm demo --libvirt` creates them:
// guest RAM a shared memfd, a virtio balloon with deflate-on-oom and guest
// stats each second, its serial console written to a file, and cmm's
// terms in its <metadata>. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pool/member.h"

namespace cmm::hv {

struct DomainSpec {
  std::string name;
  uint64_t mem_bytes = 0;  // a whole number of MiB
  std::string type = "qemu";  // "qemu" (TCG) or "kvm"
  std::string kernel, initrd, cmdline;
  std::string console_path;
  bool balloon = true;
  std::optional<MemberSettings> terms;  // written with manage="yes"
};

// `text` with &, <, >, ' and " escaped, for an attribute or element.
std::string XmlEscape(std::string_view text);
std::string DomainXml(const DomainSpec& spec);

}  // namespace cmm::hv
