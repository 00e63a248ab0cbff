// An operator's terms for a domain, kept with the domain itself in its
// <metadata>, in cmm's own namespace, so they survive a restart of either
// daemon and move with the domain:
//
//   <metadata>
//     <cmm:terms xmlns:cmm="urn:cmm:terms:1" weight="200" min="256M" max="1G" manage="yes"/>
//   </metadata>
//
// weight is 0-255, min and max are sizes ("256M", or bytes; max 0 or
// absent: its RAM), manage is yes or no (with --libvirt-select tagged only
// domains that say yes are managed). An operator may write it by hand
// (virsh metadata, virsh edit): what it says is checked, and a value that
// is not one is refused with the domain named.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "pool/member.h"

namespace cmm::hv {

inline constexpr std::string_view kTermsNamespace = "urn:cmm:terms:1";
inline constexpr std::string_view kTermsPrefix = "cmm";

struct DomainTerms {
  std::optional<uint8_t> weight;
  std::optional<Bytes> min_bytes;
  std::optional<Bytes> max_bytes;
  std::optional<bool> manage;
};

// The element libvirt gives back (virDomainGetMetadata, with or without
// its namespace prefix); kInvalid naming `domain` and what was wrong.
Result<DomainTerms> ParseDomainTerms(std::string_view xml, const std::string& domain, Bytes ram);
// The element to give libvirt (virDomainSetMetadata, key "cmm").
std::string DomainTermsXml(const MemberSettings& terms, bool manage);

}  // namespace cmm::hv
