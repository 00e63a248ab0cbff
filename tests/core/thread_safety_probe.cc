// Compiled by check_thread_safety.cmake under clang with -Wthread-safety,
// once per PROBE: the correct uses must compile, each misuse must not.
// If the lock wrappers lost their annotations, the misuses would compile.
#include "core/mutex.h"

namespace {

class Account {
 public:
  int Correct() {
    cmm::MutexLock lock(mu_);
    Touch();
    lock.Unlock();
    lock.Lock();
    return balance_;
  }
  int SharedCorrect() {
    cmm::ReaderLock lock(rw_);
    return shared_;
  }
#if PROBE == 1  // a guarded field read without its mutex
  int Misuse() { return balance_; }
#elif PROBE == 2  // a function that needs the mutex called without it
  int Misuse() {
    Touch();
    return 0;
  }
#elif PROBE == 3  // read after the scoped lock let go
  int Misuse() {
    cmm::MutexLock lock(mu_);
    lock.Unlock();
    return balance_;
  }
#elif PROBE == 4  // a write under a shared (reader) lock
  int Misuse() {
    cmm::ReaderLock lock(rw_);
    return ++shared_;
  }
#endif

 private:
  void Touch() REQUIRES(mu_) { ++balance_; }

  cmm::Mutex mu_;
  int balance_ GUARDED_BY(mu_) = 0;
  cmm::SharedMutex rw_;
  int shared_ GUARDED_BY(rw_) = 0;
};

}  // namespace

int main() {
  Account a;
  int sum = a.Correct() + a.SharedCorrect();
#if PROBE > 0
  sum += a.Misuse();
#endif
  return sum == 1 ? 0 : 1;
}
