// An operator's terms kept in a domain's <metadata> (the issue's words:
// metadata parsing — missing, malformed, out-of-range values refused with
// the domain named), and written back in the same form.
#include <gtest/gtest.h>

#include "members/libvirt/domain_terms.h"

namespace cmm::hv {
namespace {

constexpr Bytes kRam = cmm::GiB(2);

TEST(DomainTerms, WhatLibvirtGivesBackIsReadWithOrWithoutItsPrefix) {
  for (const char* xml : {R"(<terms weight="200" min="256M" max="1G" manage="yes"/>)",
                          R"(<cmm:terms xmlns:cmm="urn:cmm:terms:1" weight='200' min='268435456' max="1G" manage="yes"/>)",
                          R"(  <terms weight="200" min="256M" max="1073741824" manage="yes" later="x"></terms>)"}) {
    const auto t = ParseDomainTerms(xml, "db1", kRam);
    ASSERT_TRUE(t.has_value()) << xml << ": " << t.error();
    EXPECT_EQ(t->weight, 200);
    EXPECT_EQ(t->min_bytes, cmm::MiB(256));
    EXPECT_EQ(t->max_bytes, cmm::GiB(1));
    EXPECT_EQ(t->manage, true);
  }
  const auto none = ParseDomainTerms("<terms/>", "db1", kRam);
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->weight || none->min_bytes || none->max_bytes || none->manage);
}

TEST(DomainTerms, MalformedOrOutOfRangeValuesAreRefusedWithTheDomainNamed) {
  for (const char* xml : {"", "terms", "<other weight=\"1\"/>", "<terms weight=\"256\"/>", "<terms weight=\"-1\"/>",
                          "<terms weight=\"1x\"/>", "<terms min=\"lots\"/>", "<terms max=\"3G\"/>",
                          "<terms min=\"1G\" max=\"512M\"/>", "<terms manage=\"maybe\"/>", "<terms weight=1/>",
                          "<terms weight=\"1", "<terms weight=\"1\""}) {
    const auto t = ParseDomainTerms(xml, "db1", kRam);
    ASSERT_FALSE(t.has_value()) << xml;
    EXPECT_EQ(t.error().code, ErrorCode::kInvalid);
    EXPECT_NE(t.error().message.find("domain db1: its cmm terms"), std::string::npos) << t.error();
  }
}

TEST(DomainTerms, WhatIsWrittenReadsBackTheSame) {
  const MemberSettings s{9, cmm::MiB(96), cmm::MiB(512)};
  const auto t = ParseDomainTerms(DomainTermsXml(s, false), "db1", kRam);
  ASSERT_TRUE(t.has_value()) << t.error();
  EXPECT_EQ(t->weight, 9);
  EXPECT_EQ(t->min_bytes, cmm::MiB(96));
  EXPECT_EQ(t->max_bytes, cmm::MiB(512));
  EXPECT_EQ(t->manage, false);
}

}  // namespace
}  // namespace cmm::hv
