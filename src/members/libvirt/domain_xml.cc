#include "members/libvirt/domain_xml.h"

#include <fmt/format.h>

#include "members/libvirt/domain_terms.h"

namespace cmm::hv {

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string DomainXml(const DomainSpec& s) {
  const std::string e_name = XmlEscape(s.name);
  std::string metadata;
  if (s.terms) {
    // The element as libvirt keeps it, with cmm's namespace declared.
    std::string terms = DomainTermsXml(*s.terms, true);
    terms.replace(0, 6, fmt::format("<{}:terms xmlns:{}=\"{}\"", kTermsPrefix, kTermsPrefix, kTermsNamespace));
    metadata = "<metadata>" + terms + "</metadata>";
  }
  const uint64_t mib = s.mem_bytes >> 20;
  return fmt::format(
      "<domain type='{type}'>\n"
      "  <name>{name}</name>\n"
      "  <memory unit='MiB'>{mib}</memory>\n"
      "  <currentMemory unit='MiB'>{mib}</currentMemory>\n"
      "  {metadata}\n"
      "  <vcpu>1</vcpu>\n"
      "  <os>\n"
      "    <type arch='x86_64' machine='pc'>hvm</type>\n"
      "    <kernel>{kernel}</kernel>\n"
      "    <initrd>{initrd}</initrd>\n"
      "    <cmdline>{cmdline}</cmdline>\n"
      "  </os>\n"
      "  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>\n"
      "  <on_poweroff>destroy</on_poweroff>\n"
      "  <devices>\n"
      "    <serial type='file'><source path='{console}'/><target port='0'/></serial>\n"
      "    {balloon}\n"
      "  </devices>\n"
      "</domain>\n",
      fmt::arg("type", s.type == "kvm" ? "kvm" : "qemu"), fmt::arg("name", e_name), fmt::arg("mib", mib),
      fmt::arg("metadata", metadata), fmt::arg("kernel", XmlEscape(s.kernel)), fmt::arg("initrd", XmlEscape(s.initrd)),
      fmt::arg("cmdline", XmlEscape(s.cmdline)), fmt::arg("console", XmlEscape(s.console_path)),
      fmt::arg("balloon", s.balloon ? "<memballoon model='virtio' autodeflate='on'><stats period='1'/></memballoon>"
                                    : "<memballoon model='none'/>"));
}

}  // namespace cmm::hv
