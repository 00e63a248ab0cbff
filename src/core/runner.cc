#include "core/runner.h"

#include <cerrno>

namespace cmm {

int PollRunner::Start(Pollable& body) {
  MutexLock lock(mu_);
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
    MutexLock lock(mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  wake_.NotifyAll();
  if (t.joinable()) t.join();
}

bool PollRunner::running() const {
  MutexLock lock(mu_);
  return thread_.joinable();
}

void PollRunner::Run(Pollable& body) {
  MutexLock lock(mu_);
  while (!stop_) {
    lock.Unlock();
    const TimePoint next = body.Poll(clock_.Now());
    lock.Lock();
    // The deadline is on the steady clock, as is the real Clock.
    while (!stop_ && wake_.WaitUntil(lock, next)) {
    }
  }
}

}  // namespace cmm
