// The PollRunner drives a Pollable from a real thread and stops promptly.
#include "core/runner.h"

#include <atomic>
#include <chrono>

#include <gtest/gtest.h>

namespace cmm {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

class Counter final : public Pollable {
 public:
  explicit Counter(Duration period) : period_(period) {}
  TimePoint Poll(TimePoint now) override {
    ++polls;
    return now + period_;
  }
  std::atomic<int> polls{0};

 private:
  Duration period_;
};

TEST(Runner, PollsRepeatedlyUntilStopped) {
  SteadyClock clock;
  PollRunner runner(clock);
  Counter body(std::chrono::milliseconds(1));
  ASSERT_EQ(runner.Start(body), 0);
  EXPECT_TRUE(runner.running());
  while (body.polls.load() < 5) std::this_thread::yield();
  runner.Stop();
  EXPECT_FALSE(runner.running());
  const int after = body.polls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(body.polls.load(), after);
}

TEST(Runner, StopWakesALongSleep) {
  SteadyClock clock;
  PollRunner runner(clock);
  Counter body(std::chrono::hours(1));
  ASSERT_EQ(runner.Start(body), 0);
  while (body.polls.load() < 1) std::this_thread::yield();
  runner.Stop();  // must not wait an hour
  EXPECT_EQ(body.polls.load(), 1);
}

TEST(Runner, SecondStartWhileRunningIsRefused) {
  SteadyClock clock;
  PollRunner runner(clock);
  Counter body(std::chrono::hours(1));
  ASSERT_EQ(runner.Start(body), 0);
  EXPECT_NE(runner.Start(body), 0);
  runner.Stop();
  EXPECT_EQ(runner.Start(body), 0);  // and it can start again
  runner.Stop();
}

}  // namespace
}  // namespace cmm
