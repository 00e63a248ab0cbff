// Helpers to run the real `cmm` binary: one-shot commands with captured
// output, and long-running partitions in the background.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cmm::testing {

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

inline std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A temporary directory for sockets and output, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "cmm-test-XXXXXX").string();
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `cmm args...` to completion (killed after `limit`).
inline RunResult RunCmm(const std::string& dir, std::vector<std::string> args,
                        std::chrono::seconds limit = std::chrono::seconds(30)) {
  static int seq = 0;
  const std::string out = dir + "/run" + std::to_string(++seq) + ".out";
  const std::string err = out + ".err";
  args.insert(args.begin(), CMM_BINARY);
  const pid_t pid = fork();
  if (pid == 0) {
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    auto argv = Argv(args);
    execv(argv[0], argv.data());
    _exit(127);
  }
  RunResult r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

// A `cmm guest` (or `cmm hv`: `sub`) running in the background; its output
// goes to DIR/TAG.out and DIR/TAG.out.err.
class GuestProcess {
 public:
  GuestProcess(const std::string& dir, std::vector<std::string> args, const std::string& sub = "guest",
               const std::string& tag = "guest")
      : out_(dir + "/" + tag + ".out") {
    args.insert(args.begin(), {CMM_BINARY, sub});
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      // A test that crashes (a sanitizer's abort) takes its processes with it.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = open((out_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      auto argv = Argv(args);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~GuestProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Sends `sig` and returns the exit code (or -1), waiting at most 20 s.
  int Stop(int sig = SIGTERM) {
    kill(pid_, sig);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string out() const { return Slurp(out_); }
  std::string err() const { return Slurp(out_ + ".err"); }

 private:
  std::string out_;
  pid_t pid_ = -1;
};

// Polls `pred` every `every` (20 ms unless told) for up to `limit`.
template <class Pred>
bool WaitUntil(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10),
               std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(every);
  }
  return pred();
}

}  // namespace cmm::testing
