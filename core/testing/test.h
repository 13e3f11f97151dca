// Tests that run inside a reactor.
//
//   REEF_TEST(timer, fires_in_order) {
//     co_await sleep(1ms);         // a coroutine, or return a future<>
//     EXPECT_TRUE(...);
//   }
//
// The test main (//core/testing:test_main) creates one reactor on the main
// thread, with the reactor flags given on the command line (so the same
// binary runs on `--reactor-backend=epoll`), and runs each test body as a
// task in it; the test ends when the body's future resolves. An exception
// that escapes the body, synchronously or in a continuation, is reported as
// the test's failure, not as a crash. Plain TEST()s may run in the same
// binary and use engine() too.
//
// In a coroutine body use EXPECT_*, not ASSERT_*: ASSERT_* fails by
// `return`, which a coroutine cannot do (write `if (...) co_return;`).
#pragma once

#include <gtest/gtest.h>

#include "core/function.h"
#include "core/future.h"
#include "core/reactor.h"

namespace reef::testing {

/// Runs `body` as a task on the thread's reactor and the loop until its
/// future resolves; a failure becomes a GoogleTest failure.
void run_in_reactor(noncopyable_function<future<>()> body);

}  // namespace reef::testing

#define REEF_TEST(suite, name)                                                  \
  static ::reef::future<> reef_test_body_##suite##_##name();                  \
  TEST(suite, name) { ::reef::testing::run_in_reactor(&reef_test_body_##suite##_##name); } \
  static ::reef::future<> reef_test_body_##suite##_##name()
