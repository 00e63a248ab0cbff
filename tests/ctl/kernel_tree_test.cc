// The mounted tree's layout: the kernel's paths for each group of files,
// the /proc files, and lookups that miss.
#include <gtest/gtest.h>

#include "ctl/kernel_tree.h"

namespace cmm::ctl {
namespace {

TEST(KernelTree, DeviceAndParameterFilesLandWhereTheKernelPutsThem) {
  const KernelTree t({{"loaned_kb", "device", 0444}, {"oom_freed_kb", "device", 0644}, {"delay", "parameters", 0644}});
  const TreeNode* f = t.Find("/sys/devices/system/cmm/cmm0/oom_freed_kb");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->dir);
  EXPECT_EQ(f->file.group, "device");
  EXPECT_EQ(f->file.mode, 0644U);
  EXPECT_TRUE(f->file.sysfs);
  ASSERT_NE(t.Find("/sys/module/cmm/parameters/delay"), nullptr);
  EXPECT_EQ(t.Find("/sys/module/cmm/parameters/delay")->file.group, "parameters");
  const TreeNode* lparcfg = t.Find("/proc/ppc64/lparcfg");
  ASSERT_NE(lparcfg, nullptr);
  EXPECT_EQ(lparcfg->file.op, "lparcfg");
  EXPECT_EQ(lparcfg->file.mode, 0444U);
  EXPECT_EQ(t.Find("/proc/meminfo")->file.op, "meminfo");
  const TreeNode* root = t.Find("/");
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->dir);
  EXPECT_EQ(root->children.size(), 2U);  // proc, sys
}

TEST(KernelTree, MissesAreNull) {
  const KernelTree t({});
  EXPECT_EQ(t.Find("/sys/devices/system/cmm/cmm0/loaned_kb"), nullptr);
  EXPECT_NE(t.Find("/sys/devices/system/cmm/cmm0"), nullptr);  // the directory is there, empty
  EXPECT_EQ(t.Find("/proc/meminfo/x"), nullptr);               // through a file
  EXPECT_EQ(t.Find("/nothing"), nullptr);
}

}  // namespace
}  // namespace cmm::ctl
