// Issue 13: `cmm hv watch` under a pseudo-terminal: the pool bar and every
// member's row refresh, a key changes the sort, q (or Ctrl-C) quits and
// gives the screen back; without a terminal, one line per refresh.
#include <poll.h>
#include <pty.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "process.h"

namespace cmm::testing {
namespace {

class HvWatch : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("CMM_RUN_DIR", dir.path().c_str(), 1);
    hv = std::make_unique<GuestProcess>(dir.path(), std::vector<std::string>{"--pool", "96M", "--period-ms", "200"},
                                        "hv", "hv");
    ASSERT_TRUE(WaitUntil([&] { return RunCmm(dir.path(), {"hv", "status"}).code == 0; })) << hv->err();
    alpha = std::make_unique<GuestProcess>(
        dir.path(), std::vector<std::string>{"--name", "alpha", "--mem", "64M", "--workload", "hog:24M"}, "guest",
        "alpha");
    beta = std::make_unique<GuestProcess>(dir.path(), std::vector<std::string>{"--name", "beta", "--mem", "48M"},
                                          "guest", "beta");
    ASSERT_TRUE(WaitUntil(
        [&] {
          const auto r = RunCmm(dir.path(), {"hv", "status", "--json"});
          if (r.code != 0) return false;
          const auto s = nlohmann::json::parse(r.out);
          if (s["partitions"].size() != 2) return false;
          for (const auto& p : s["partitions"]) {
            if (p["name"] == "alpha" && p["backing_bytes"].get<uint64_t>() >= (20u << 20)) return true;
          }
          return false;
        },
        std::chrono::seconds(30)))
        << hv->err() << alpha->err() << RunCmm(dir.path(), {"hv", "status"}).out;
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }

  // Starts `cmm hv watch` on a new pseudo-terminal of 100 columns.
  void Start() {
    winsize ws{};
    ws.ws_col = 100;
    ws.ws_row = 30;
    pid_ = forkpty(&master_, nullptr, nullptr, &ws);
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<std::string> args{CMM_BINARY, "hv", "watch", "--interval", "0.3"};
      auto argv = Argv(args);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  // Reads what the terminal has within `ms`; false at its end.
  bool Drain(int ms) {
    pollfd p{master_, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = read(master_, buf, sizeof buf);
    if (n <= 0) return false;
    screen_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Reads the terminal until `text` shows (after `from`), for up to 20 s.
  bool Await(const std::string& text, size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (screen_.find(text, from) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline || !Drain(100)) return screen_.find(text, from) != std::string::npos;
    }
    return true;
  }
  void Press(const char* keys) { ASSERT_EQ(write(master_, keys, strlen(keys)), static_cast<ssize_t>(strlen(keys))); }
  // The exit code, waiting at most 10 s (-1: still running, or killed);
  // reads the terminal meanwhile, so that the child never blocks on it.
  int Exit() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      Drain(50);
    }
    pid_ = -1;
    while (Drain(200)) {
      if (screen_.ends_with("\x1b[?1049l")) break;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // The last frame drawn.
  std::string Frame() const { return screen_.substr(screen_.rfind("\x1b[2J")); }

  TempDir dir;
  std::unique_ptr<GuestProcess> hv, alpha, beta;
  int master_ = -1;
  pid_t pid_ = -1;
  std::string screen_;
};

TEST_F(HvWatch, OnATerminalTheViewRefreshesChangesItsSortOnAKeyAndQuitsOnQ) {
  Start();
  ASSERT_TRUE(Await("sorted by name")) << screen_;
  ASSERT_TRUE(Await("beta")) << screen_;
  EXPECT_NE(screen_.find("\x1b[?1049h"), std::string::npos) << "the alternate screen";
  std::string frame = Frame();
  EXPECT_NE(frame.find("pool ["), std::string::npos);
  EXPECT_LT(frame.find("alpha"), frame.find("beta"));
  // It refreshes by itself: more frames come.
  const size_t frames = screen_.size();
  ASSERT_TRUE(Await("\x1b[2J", frames));
  // b: by backing, largest first; alpha holds its hog, beta nothing.
  const size_t before = screen_.size();
  Press("b");
  ASSERT_TRUE(Await("sorted by backing, largest first", before)) << screen_.substr(before);
  frame = Frame();
  ASSERT_NE(frame.find("sorted by backing"), std::string::npos);
  EXPECT_LT(frame.find("alpha"), frame.find("beta"));
  // b again: the other way round.
  const size_t again = screen_.size();
  Press("b");
  ASSERT_TRUE(Await("sorted by backing |", again)) << screen_.substr(again);
  frame = Frame();
  EXPECT_LT(frame.find("beta"), frame.find("alpha"));
  Press("q");
  EXPECT_EQ(Exit(), 0);
  EXPECT_NE(screen_.rfind("\x1b[?25h\x1b[?1049l"), std::string::npos) << "the screen and cursor given back";
}

TEST_F(HvWatch, CtrlCQuitsAndGivesTheScreenBack) {
  Start();
  ASSERT_TRUE(Await("sorted by name")) << screen_;
  Press("\x03");
  EXPECT_EQ(Exit(), 0);
  EXPECT_NE(screen_.rfind("\x1b[?1049l"), std::string::npos);
}

TEST_F(HvWatch, WithoutATerminalItPrintsOneLinePerRefresh) {
  const auto r = RunCmm(dir.path(), {"hv", "watch", "--count", "3", "--interval", "0.2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "no escape codes in a log";
  EXPECT_NE(r.out.find("pool 96 MiB, backing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| alpha "), std::string::npos);
  const auto bad = RunCmm(dir.path(), {"hv", "watch", "--sort", "colour"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--sort colour: sort by one of name, RAM"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace cmm::testing
