// Asynchronous loops, including how they yield to the reactor.
#include "core/loop.h"

#include <atomic>
#include <chrono>
#include <list>
#include <stdexcept>
#include <vector>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(loop, repeat_runs_until_stop) {
  int n = 0;
  co_await repeat([&] { return ++n == 5 ? stop_iteration::yes : stop_iteration::no; });
  EXPECT_EQ(n, 5);
}

REEF_TEST(loop, repeat_waits_for_unready_iterations) {
  int n = 0;
  co_await repeat([&]() -> future<stop_iteration> {
    co_await sleep(100us);
    co_return ++n == 3 ? stop_iteration::yes : stop_iteration::no;
  });
  EXPECT_EQ(n, 3);
}

REEF_TEST(loop, repeat_stops_at_the_first_failure) {
  int n = 0;
  auto f = repeat([&]() -> stop_iteration {
    if (++n == 2) throw std::runtime_error("second");
    return stop_iteration::no;
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(n, 2);
}

REEF_TEST(loop, do_until_checks_before_each_call) {
  int n = 0;
  co_await do_until([&] { return n >= 3; }, [&] { ++n; });
  EXPECT_EQ(n, 3);
  co_await do_until([] { return true; }, [&] { ++n; });
  EXPECT_EQ(n, 3) << "the condition held at once: no call";
}

REEF_TEST(loop, keep_doing_ends_only_with_a_failure) {
  int n = 0;
  auto f = keep_doing([&]() -> future<> {
    if (++n == 100) return make_exception_future<>(std::runtime_error("enough"));
    return make_ready_future<>();
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(n, 100);
}

REEF_TEST(loop, do_for_each_is_sequential) {
  std::vector<int> in{1, 2, 3, 4};
  std::vector<int> seen;
  int running = 0;
  co_await do_for_each(in, [&](int v) -> future<> {
    EXPECT_EQ(running++, 0);
    co_await sleep(100us);
    seen.push_back(v);
    --running;
  });
  EXPECT_EQ(seen, in);
}

REEF_TEST(loop, parallel_for_each_starts_all_at_once) {
  std::vector<int> in{1, 2, 3, 4, 5};
  int running = 0, peak = 0, done = 0;
  co_await parallel_for_each(in, [&](int) -> future<> {
    peak = std::max(peak, ++running);
    co_await sleep(1ms);
    --running;
    ++done;
  });
  EXPECT_EQ(peak, 5);
  EXPECT_EQ(done, 5);
}

REEF_TEST(loop, parallel_for_each_waits_for_all_then_fails) {
  std::vector<int> in{1, 2, 3};
  int done = 0;
  // A coroutine lambda must outlive the future (see parallel_for_each).
  auto work = [&](int v) -> future<> {
    co_await sleep(std::chrono::milliseconds(v));
    ++done;
    if (v == 1) throw std::runtime_error("first");
  };
  auto f = parallel_for_each(in, work);
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(done, 3) << "the failure is reported after every element finished";
}

REEF_TEST(loop, parallel_for_each_on_ready_elements_allocates_no_state) {
  std::list<int> in{1, 2, 3};
  int sum = 0;
  auto f = parallel_for_each(in.begin(), in.end(), [&](int v) { sum += v; });
  EXPECT_TRUE(f.available());
  co_await std::move(f);
  EXPECT_EQ(sum, 6);
}

REEF_TEST(loop, max_concurrent_for_each_respects_the_limit) {
  std::vector<int> in(10);
  int running = 0, peak = 0, done = 0;
  co_await max_concurrent_for_each(in, 3, [&](int) -> future<> {
    peak = std::max(peak, ++running);
    co_await sleep(200us);
    --running;
    ++done;
  });
  EXPECT_EQ(peak, 3);
  EXPECT_EQ(done, 10);
}

REEF_TEST(loop, max_concurrent_for_each_stops_starting_after_a_failure) {
  std::vector<int> in{0, 1, 2, 3, 4, 5};
  int started = 0;
  auto f = max_concurrent_for_each(in, 1, [&](int v) -> future<> {
    ++started;
    co_await sleep(100us);
    if (v == 1) throw std::runtime_error("one");
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(started, 2);
}

REEF_TEST(loop, max_concurrent_for_each_yields_when_the_quota_is_used_up) {
  std::vector<int> in(1000);
  int calls = 0;
  auto f = max_concurrent_for_each(in, 4, [&](int) {
    if (++calls == 10) core_internal::preempt_requested.store(true, std::memory_order_relaxed);
  });
  EXPECT_FALSE(f.available()) << "a long run of ready elements lets the reactor in";
  EXPECT_LT(calls, 1000);
  co_await std::move(f);
  EXPECT_EQ(calls, 1000);
}

REEF_TEST(loop, max_concurrent_for_each_refuses_zero_concurrency) {
  std::vector<int> in{1};
  EXPECT_THROW(co_await max_concurrent_for_each(in, 0, [](int) {}), std::invalid_argument);
}

// A chain of ready iterations must still let a timer in: the loop yields
// when the task quota is up.
REEF_TEST(loop, ten_million_ready_iterations_yield_to_a_timer) {
  constexpr long iterations = 10'000'000;
  long done = 0;
  long done_when_timer_fired = -1;
  steady_clock_type::time_point fired_at{};
  auto deadline = steady_clock_type::now() + 1ms;
  timer<> t([&] {
    done_when_timer_fired = done;
    fired_at = steady_clock_type::now();
  });
  t.arm(deadline);
  co_await repeat([&] { return ++done == iterations ? stop_iteration::yes : stop_iteration::no; });
  EXPECT_EQ(done, iterations);
  EXPECT_GE(done_when_timer_fired, 0) << "the timer never fired during the loop";
  if (done_when_timer_fired < 0) co_return;
  EXPECT_LT(done_when_timer_fired, iterations) << "the loop did not yield to the timer";
  auto late = std::chrono::duration_cast<std::chrono::microseconds>(fired_at - deadline);
  auto quota = engine().options().task_quota;
  // Within a few quotas; the bound leaves room for a shared machine's
  // scheduling noise (without preemption the loop takes far longer).
  EXPECT_LT(late, 100 * quota) << "late by " << late.count() << " us";
  logger("loop_test").info("timer fired {} us late ({} us quota) after {} of {} iterations",
                           late.count(), quota.count(), done_when_timer_fired, iterations);
}

}  // namespace
}  // namespace reef
