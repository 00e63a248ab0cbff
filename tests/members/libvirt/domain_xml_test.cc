// The domains `cmm demo --libvirt` makes: their XML says what the issue
// asks (a balloon with deflate-on-oom and stats, memfd RAM, a console file)
// and carries cmm's terms as ParseDomainTerms reads them back.
#include <gtest/gtest.h>

#include "members/libvirt/domain_terms.h"
#include "members/libvirt/domain_xml.h"

namespace cmm::hv {
namespace {

constexpr Bytes kMiB = Bytes(1 << 20);

TEST(DomainXml, EscapesWhatXmlWouldReadAsMarkup) {
  EXPECT_EQ(XmlEscape("a<b>&'\"c"), "a&lt;b&gt;&amp;&apos;&quot;c");
  EXPECT_EQ(XmlEscape("cmm.workload=hog:8M"), "cmm.workload=hog:8M");
}

TEST(DomainXml, ATransientDemoDomainHasABalloonThatDeflatesOnOomMemfdRamAConsoleFileAndItsTerms) {
  DomainSpec s;
  s.name = "cmm-demo-7-web1";
  s.mem_bytes = 512ULL << 20;
  s.kernel = "/img/vmlinuz";
  s.initrd = "/img/initrd.img";
  s.cmdline = "console=ttyS0 cmm.workload=a&b";
  s.console_path = "/tmp/d/web1.console";
  MemberSettings t{};
  t.min_bytes = 512 * kMiB;
  s.terms = t;
  const std::string xml = DomainXml(s);
  EXPECT_NE(xml.find("<domain type='qemu'>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<name>cmm-demo-7-web1</name>"), std::string::npos);
  EXPECT_NE(xml.find("<memory unit='MiB'>512</memory>"), std::string::npos);
  EXPECT_NE(xml.find("<cmdline>console=ttyS0 cmm.workload=a&amp;b</cmdline>"), std::string::npos);
  EXPECT_NE(xml.find("<memballoon model='virtio' autodeflate='on'><stats period='1'/></memballoon>"),
            std::string::npos);
  EXPECT_NE(xml.find("<source type='memfd'/>"), std::string::npos);
  EXPECT_NE(xml.find("<source path='/tmp/d/web1.console'/>"), std::string::npos);
  const auto from = xml.find("<cmm:terms"), to = xml.find("/>", from);
  ASSERT_NE(from, std::string::npos) << xml;
  EXPECT_NE(xml.find("xmlns:cmm=\"urn:cmm:terms:1\"", from), std::string::npos);
  const auto terms = ParseDomainTerms(xml.substr(from, to + 2 - from), s.name, 512 * kMiB);
  ASSERT_TRUE(terms.has_value()) << terms.error().message;
  EXPECT_EQ(terms->min_bytes, 512 * kMiB);
  EXPECT_EQ(terms->manage, true);

  s.type = "kvm";
  s.balloon = false;
  s.terms.reset();
  const std::string bare = DomainXml(s);
  EXPECT_NE(bare.find("<domain type='kvm'>"), std::string::npos);
  EXPECT_NE(bare.find("<memballoon model='none'/>"), std::string::npos);
  EXPECT_EQ(bare.find("<metadata>"), std::string::npos);
}

}  // namespace
}  // namespace cmm::hv
