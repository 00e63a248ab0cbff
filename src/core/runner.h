// A PollThread on a std::thread: calls Pollable::Poll when its deadline
// comes, and wakes at once when asked to stop.
#pragma once

#include <thread>

#include "core/mutex.h"
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
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_ GUARDED_BY(mu_);
};

}  // namespace cmm
