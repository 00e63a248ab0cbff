// State that survives a restart (the issue's words): the members' terms and
// the attached VMs, kept in a file written whole and atomically, read back
// with its checks; a file that cannot be read is set aside and said, never
// believed in part. Real files in a temporary directory.
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "hv/kept_state.h"

namespace cmm::hv {
namespace {

constexpr Bytes MiB = cmm::MiB(1);

class KeptStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cmm-kept-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/hv.state";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string dir_, path_;
};

TEST_F(KeptStateTest, TermsAndVmsComeBackInANewKeeperAsTheyWereKept) {
  {
    StateKeeper k(path_);
    EXPECT_EQ(k.note(), "");
    k.SetTerms("web1", {9, 32 * MiB, 96 * MiB});
    k.SetTerms("db1", {3, Bytes(0), Bytes(0)});
    k.AddVm({"web1", "/run/cmm/vm-web1/qmp.sock", 4242});
    k.SetTerms("db1", {4, Bytes(0), Bytes(0)});
  }
  StateKeeper again(path_);
  ASSERT_TRUE(again.Terms("web1").has_value());
  EXPECT_EQ(again.Terms("web1")->weight, 9);
  EXPECT_EQ(again.Terms("web1")->min_bytes, 32 * MiB);
  EXPECT_EQ(again.Terms("web1")->max_bytes, 96 * MiB);
  EXPECT_EQ(again.Terms("db1")->weight, 4);
  ASSERT_EQ(again.Vms().size(), 1U);
  EXPECT_EQ(again.Vms()[0], (KeptVm{"web1", "/run/cmm/vm-web1/qmp.sock", 4242}));
  // Written whole through a temporary: none is left, and only root reads it.
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST_F(KeptStateTest, AMemberThatLeftIsForgottenButNotWhileTheDaemonStops) {
  StateKeeper k(path_);
  k.SetTerms("a", {1, Bytes(0), Bytes(0)});
  k.AddVm({"b", "/x/qmp.sock", 7});
  k.SetTerms("b", {2, Bytes(0), Bytes(0)});
  k.Forget("a");
  k.Freeze();
  k.Forget("b");  // stopping: its VM is attached again at the next start
  StateKeeper again(path_);
  EXPECT_FALSE(again.Terms("a").has_value());
  EXPECT_TRUE(again.Terms("b").has_value());
  EXPECT_EQ(again.Vms().size(), 1U);
}

TEST_F(KeptStateTest, AFileThatCannotBeReadIsSetAsideAndSaid) {
  for (const char* bad : {"{", "[]", R"({"version": 2, "terms": {}, "vms": []})",
                          R"({"version": 1, "terms": {"web1": {"weight": 300, "min_bytes": 0, "max_bytes": 0}}, "vms": []})",
                          R"({"version": 1, "terms": {"bad name!": {"weight": 1, "min_bytes": 0, "max_bytes": 0}}, "vms": []})",
                          R"({"version": 1, "terms": {}, "vms": [{"name": "x", "qmp": "", "pid": 1}]})",
                          R"({"version": 1, "terms": {}, "vms": [{"name": "x", "qmp": "/q", "pid": "1"}]})",
                          "\xff\xfe"}) {
    Write(bad);
    StateKeeper k(path_);
    EXPECT_NE(k.note().find("could not be read"), std::string::npos) << bad;
    EXPECT_NE(k.note().find(".bad"), std::string::npos) << k.note();
    EXPECT_TRUE(k.Vms().empty());
    EXPECT_TRUE(std::filesystem::exists(path_ + ".bad"));
    EXPECT_FALSE(std::filesystem::exists(path_));
  }
}

TEST_F(KeptStateTest, TheTextReadsBackToTheSameState) {
  KeptState s;
  s.terms["web1"] = {9, 32 * MiB, Bytes(0)};
  s.vms["web1"] = {"web1", "/q.sock", 12};
  const auto back = ParseKeptState(KeptStateText(s));
  ASSERT_TRUE(back.has_value()) << back.error();
  EXPECT_EQ(back->terms.at("web1").weight, 9);
  EXPECT_EQ(back->vms.at("web1"), s.vms.at("web1"));
}

}  // namespace
}  // namespace cmm::hv
