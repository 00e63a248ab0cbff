// The demo's child processes: `cmm hv` and `cmm guest`, each in its own
// process group (so Ctrl-C reaches only the demo, which stops them in
// order) and told to end if the demo dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cmm::demo {

class Child {
 public:
  // Runs `argv` with stdout and stderr appended to `log`.
  static std::optional<Child> Spawn(const std::vector<std::string>& argv, const std::string& log);
  Child(Child&& other) noexcept : pid_(other.pid_), status_(other.status_) { other.pid_ = -1; }
  Child& operator=(Child&&) = delete;
  ~Child();  // SIGKILL if still running

  pid_t pid() const { return pid_; }
  // True while it runs; once it has ended, its exit code is kept.
  bool Running();
  // SIGTERM, then waits up to `grace` (then SIGKILL). The exit code, or -1 if killed.
  int Stop(std::chrono::milliseconds grace);
  // RssShmem of the process from /proc/PID/status, in bytes (0 if gone).
  uint64_t RssShmem() const;

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> status_;
};

}  // namespace cmm::demo
