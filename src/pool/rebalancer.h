// Runs the pool policy on its own clock: every period it has the pool
// observe each member, decide, and hand each its target. One rebalancer
// drives every member kind; no adapter holds policy or a timer for it.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "core/mutex.h"
#include "pool/pool.h"

namespace cmm::hv {

class Rebalancer {
 public:
  // Rebalances at once, then every `period` until destroyed; `after` (if
  // set) runs after each round, on the rebalancer's thread.
  Rebalancer(Pool& pool, std::chrono::milliseconds period, std::function<void()> after = {});
  // No thread: the owner calls Round() once per period of its own clock
  // (cmm sim's simulated one).
  struct Manual {};
  Rebalancer(Pool& pool, std::chrono::milliseconds period, Manual, std::function<void()> after = {});
  ~Rebalancer();
  Rebalancer(const Rebalancer&) = delete;
  Rebalancer& operator=(const Rebalancer&) = delete;

  std::chrono::milliseconds period() const { return period_; }
  // One period's work: the pool rebalances, then the hook runs.
  void Round();

 private:
  void Run();

  Pool& pool_;
  const std::chrono::milliseconds period_;
  std::function<void()> after_;
  Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cmm::hv
