#include "core/runner.h"

#include <cerrno>

namespace cmm {

int PollRunner::Start(Pollable& body) {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return EBUSY;
  stop_ = false;
  try {
    thread_ = std::thread([this, &body] { Run(body); });
  } catch (const std::system_error& e) {
    return e.code().value() > 0 ? e.code().value() : EAGAIN;
  }
  return 0;
}

void PollRunner::Stop() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  wake_.notify_all();
  if (t.joinable()) t.join();
}

bool PollRunner::running() const {
  std::lock_guard lock(mu_);
  return thread_.joinable();
}

void PollRunner::Run(Pollable& body) {
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    const TimePoint next = body.Poll(clock_.Now());
    lock.lock();
    // The deadline is on the steady clock, as is the real Clock.
    wake_.wait_until(lock, next, [&] { return stop_; });
  }
}

}  // namespace cmm
