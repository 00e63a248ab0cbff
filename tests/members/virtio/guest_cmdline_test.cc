// The guest image's command line, as `cmm vm run` and `cmm demo --libvirt`
// write it: workloads and files the image's init reads, refused with a
// reason when the kernel could not keep them.
#include <gtest/gtest.h>

#include "members/virtio/guest_cmdline.h"

namespace cmm::vm {
namespace {

TEST(GuestCmdline, Base64IsTheStandardAlphabetWithPadding) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("M"), "TQ==");
  EXPECT_EQ(Base64("Ma"), "TWE=");
  EXPECT_EQ(Base64("Man"), "TWFu");
  EXPECT_EQ(Base64(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(GuestCmdline, CarriesWorkloadsAndFilesAfterTheBase) {
  const auto line = GuestCmdline("console=ttyS0", {"hog:8M", "phases:/etc/cmm/w.json"}, {{"w.json", "{}"}});
  ASSERT_TRUE(line.has_value()) << line.error().message;
  EXPECT_EQ(*line, "console=ttyS0 cmm.workload=hog:8M,phases:/etc/cmm/w.json cmm.file.w.json=e30=");
  EXPECT_EQ(*GuestCmdline("", {}, {}), "");
}

TEST(GuestCmdline, RefusesSpecsWithSpacesOrCommasBadFileNamesAndALineTheKernelCannotKeep) {
  EXPECT_FALSE(GuestCmdline("", {"hog:8M,cache:1M"}, {}).has_value());
  EXPECT_FALSE(GuestCmdline("", {"hog: 8M"}, {}).has_value());
  EXPECT_FALSE(GuestCmdline("", {}, {{"../x", "a"}}).has_value());
  const auto too_long = GuestCmdline("", {}, {{"big", std::string(1500, 'x')}});
  ASSERT_FALSE(too_long.has_value());
  EXPECT_NE(too_long.error().message.find("the kernel keeps 2048"), std::string::npos);
}

}  // namespace
}  // namespace cmm::vm
