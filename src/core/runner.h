// A PollThread on a std::thread: calls Pollable::Poll when its deadline
// comes, and wakes at once when asked to stop.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/ports.h"

namespace cmm {

class PollRunner final : public PollThread {
 public:
  explicit PollRunner(Clock& clock) : clock_(clock) {}
  ~PollRunner() override { Stop(); }

  int Start(Pollable& body) override;
  void Stop() override;
  bool running() const;

 private:
  void Run(Pollable& body);

  Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace cmm
