#include "core/condition_variable.h"

#include <chrono>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(condition_variable, signal_wakes_the_longest_waiter) {
  condition_variable cv;
  std::vector<int> woken;
  auto a = cv.wait().then([&] { woken.push_back(1); });
  auto b = cv.wait().then([&] { woken.push_back(2); });
  cv.signal();
  co_await std::move(a);
  EXPECT_EQ(woken, (std::vector<int>{1}));
  EXPECT_EQ(cv.waiters(), 1u);
  cv.broadcast();
  co_await std::move(b);
  EXPECT_EQ(woken, (std::vector<int>{1, 2}));
}

REEF_TEST(condition_variable, wait_with_predicate_checks_after_each_wakeup) {
  condition_variable cv;
  int value = 0;
  auto f = cv.wait([&] { return value == 2; });
  value = 1;
  cv.signal();
  co_await yield();
  EXPECT_FALSE(f.available());
  value = 2;
  cv.signal();
  co_await std::move(f);
}

REEF_TEST(condition_variable, wait_times_out) {
  condition_variable cv;
  EXPECT_THROW(co_await cv.wait(1ms), condition_variable_timed_out);
  EXPECT_EQ(cv.waiters(), 0u);
}

REEF_TEST(condition_variable, broken_fails_waiters) {
  condition_variable cv;
  auto f = cv.wait();
  cv.broken();
  EXPECT_THROW(co_await std::move(f), broken_condition_variable);
  EXPECT_THROW(co_await cv.wait(), broken_condition_variable);
}

}  // namespace
}  // namespace reef
