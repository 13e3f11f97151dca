// The coroutine helpers: maybe_yield, return_exception, as_future,
// parallel_for_each and all.
#include "core/coroutine.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/coroutine_parallel.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(coroutine, maybe_yield_lets_other_work_in_only_when_the_quota_is_used_up) {
  bool other_ran = false;
  schedule(make_task([&] { other_ran = true; }));
  core_internal::preempt_requested.store(false, std::memory_order_relaxed);
  co_await coroutine::maybe_yield();
  EXPECT_FALSE(other_ran) << "no preemption asked: it goes on at once";
  core_internal::preempt_requested.store(true, std::memory_order_relaxed);
  co_await coroutine::maybe_yield();
  EXPECT_TRUE(other_ran) << "the queued work ran before it resumed";
}

REEF_TEST(coroutine, a_long_loop_with_maybe_yield_lets_a_timer_fire) {
  bool fired = false;
  auto timer_done = sleep(1ms).then([&] { fired = true; });
  auto until = steady_clock_type::now() + 2s;
  while (!fired && steady_clock_type::now() < until) co_await coroutine::maybe_yield();
  EXPECT_TRUE(fired);
  co_await std::move(timer_done);
}

struct guard {
  explicit guard(bool* destroyed) : destroyed(destroyed) {}
  ~guard() { *destroyed = true; }
  bool* destroyed;
};

future<int> fails_without_a_throw(bool* destroyed, bool fail) {
  guard g(destroyed);
  if (fail) co_await coroutine::return_exception(std::runtime_error("no throw"));
  co_return 1;
}

future<> void_fails_without_a_throw() {
  co_await sleep(1ms);
  co_await coroutine::return_exception(std::logic_error("void"));
}

REEF_TEST(coroutine, return_exception_fails_the_future_and_destroys_the_locals) {
  bool destroyed = false;
  auto f = fails_without_a_throw(&destroyed, true);
  EXPECT_TRUE(f.failed());
  EXPECT_TRUE(destroyed);
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  destroyed = false;
  EXPECT_EQ(co_await fails_without_a_throw(&destroyed, false), 1);
  EXPECT_THROW(co_await void_fails_without_a_throw(), std::logic_error);
}

REEF_TEST(coroutine, as_future_hands_back_the_failure_without_throwing) {
  future<int> f = co_await coroutine::as_future(
      sleep(1ms).then([]() -> int { throw std::runtime_error("kept"); }));
  EXPECT_TRUE(f.available());
  EXPECT_TRUE(f.failed());
  EXPECT_THROW(f.get(), std::runtime_error);
  future<int> g = co_await coroutine::as_future(make_ready_future<int>(5));
  EXPECT_EQ(g.get(), 5);
}

REEF_TEST(coroutine, parallel_for_each_keeps_a_coroutine_lambda_alive_until_all_are_done) {
  std::vector<int> items{1, 2, 3, 4};
  int sum = 0;
  int captured = 10;
  co_await coroutine::parallel_for_each(items, [&sum, captured](int v) -> future<> {
    co_await sleep(1ms);  // the lambda's captures are read after suspending
    sum += v * captured;
  });
  EXPECT_EQ(sum, 100);
}

REEF_TEST(coroutine, all_runs_callables_at_once_and_gives_their_values) {
  int order = 0;
  int first_started = -1, second_started = -1;
  auto [a, b] = co_await coroutine::all(
      [&]() -> future<int> {
        first_started = order++;
        co_await sleep(2ms);
        co_return 1;
      },
      [&]() -> future<std::string> {
        second_started = order++;
        co_await sleep(1ms);
        co_return "two";
      });
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  EXPECT_EQ(first_started, 0);
  EXPECT_EQ(second_started, 1) << "the second started before the first finished";
  bool threw = false;
  try {
    co_await coroutine::all([]() -> future<> { co_await sleep(1ms); },
                            []() -> future<> { throw std::runtime_error("second"); });
  } catch (const std::runtime_error&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
}

}  // namespace
}  // namespace reef
