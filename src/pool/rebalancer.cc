#include "pool/rebalancer.h"

namespace cmm::hv {

Rebalancer::Rebalancer(Pool& pool, std::chrono::milliseconds period, std::function<void()> after)
    : pool_(pool), period_(period), after_(std::move(after)), thread_([this] { Run(); }) {}

Rebalancer::Rebalancer(Pool& pool, std::chrono::milliseconds period, Manual, std::function<void()> after)
    : pool_(pool), period_(period), after_(std::move(after)) {}

void Rebalancer::Round() {
  pool_.Rebalance();
  if (after_) after_();
}

Rebalancer::~Rebalancer() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void Rebalancer::Run() {
  auto next = std::chrono::steady_clock::now();
  MutexLock lock(mu_);
  while (!stopping_) {
    lock.Unlock();
    Round();
    lock.Lock();
    // Periods are kept on a fixed grid: a slow round does not shift the rest.
    next += period_;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;
    while (!stopping_ && wake_.WaitUntil(lock, next)) {
    }
  }
}

}  // namespace cmm::hv
