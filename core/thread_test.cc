#include "core/thread.h"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "core/sanitizers.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(thread, get_waits_for_an_unready_future) {
  int result = co_await async([] {
    int a = sleep(1ms).then([] { return 20; }).get();
    int b = sleep(1ms).then([] { return 22; }).get();
    return a + b;
  });
  EXPECT_EQ(result, 42);
}

REEF_TEST(thread, other_work_runs_while_a_thread_waits) {
  bool other_ran = false;
  auto t = async([&] {
    sleep(2ms).get();
    return other_ran;
  });
  co_await sleep(100us);
  other_ran = true;
  EXPECT_TRUE(co_await std::move(t));
}

REEF_TEST(thread, exceptions_fail_the_future) {
  auto f = async([]() -> int {
    sleep(100us).get();
    throw std::runtime_error("from the thread");
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  auto g = async([] { make_exception_future<>(std::logic_error("awaited")).get(); });
  EXPECT_THROW(co_await std::move(g), std::logic_error);
}

REEF_TEST(thread, arguments_are_passed_by_value) {
  std::string s = "abc";
  auto f = async([](std::string x, int n) { return x + std::to_string(n); }, s, 7);
  s = "changed";
  EXPECT_EQ(co_await std::move(f), "abc7");
}

REEF_TEST(thread, async_returning_a_future_is_flattened) {
  auto f = async([] { return sleep(100us).then([] { return 5; }); });
  static_assert(std::is_same_v<decltype(f), future<int>>);
  EXPECT_EQ(co_await std::move(f), 5);
}

// Each thread has its own C++ exception state (the caught-exception stack
// and the uncaught count): a thread suspended inside a catch block resumes
// with its own exception, whatever other threads caught meanwhile.
REEF_TEST(thread, a_catch_block_keeps_its_exception_across_a_switch) {
  promise<> resume_a, resume_b;
  auto wait_a = resume_a.get_future();
  auto wait_b = resume_b.get_future();
  auto body = [](const char* name, future<>& wait) {
    return [name, &wait]() -> std::string {
      try {
        throw std::runtime_error(name);
      } catch (...) {
        wait.get();  // switches out while the exception is caught
        if (std::uncaught_exceptions() != 0) return "uncaught count leaked in";
        try {
          throw;  // rethrows this thread's exception
        } catch (const std::runtime_error& e) {
          return e.what();
        }
      }
    };
  };
  auto a = async(body("a", wait_a));
  auto b = async(body("b", wait_b));
  co_await yield();  // a and b each caught theirs and wait
  co_await yield();
  resume_a.set_value();  // a resumes while b's exception was caught last
  EXPECT_EQ(co_await std::move(a), "a");
  resume_b.set_value();
  EXPECT_EQ(co_await std::move(b), "b");
  EXPECT_EQ(std::current_exception(), nullptr) << "the reactor's own state is untouched";
}

REEF_TEST(thread, yield_interleaves_threads) {
  std::vector<int> order;
  auto a = async([&] {
    for (int i = 0; i < 3; ++i) {
      order.push_back(1);
      thread::yield();
    }
  });
  auto b = async([&] {
    for (int i = 0; i < 3; ++i) {
      order.push_back(2);
      thread::yield();
    }
  });
  co_await std::move(a);
  co_await std::move(b);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2, 1, 2}));
}

REEF_TEST(thread, a_long_loop_of_ready_gets_yields_to_a_timer) {
  bool timer_fired = false;
  timer<> t([&] { timer_fired = true; });
  long spins = 0;
  co_await async([&] {
    t.arm(1ms);
    while (!timer_fired) {
      make_ready_future<>().get();  // a preemption point
      ++spins;
    }
  });
  EXPECT_TRUE(timer_fired);
  EXPECT_GT(spins, 0);
}

REEF_TEST(thread, running_in_thread_tells_where_it_runs) {
  EXPECT_FALSE(thread::running_in_thread());
  bool inside = co_await async([] { return thread::running_in_thread(); });
  EXPECT_TRUE(inside);
}

REEF_TEST(thread, an_absurd_stack_size_is_refused) {
  auto f = async(thread_attributes{.stack_size = thread_attributes::stack_size_max + 1}, [] {});
  EXPECT_THROW(co_await std::move(f), std::invalid_argument);
}

REEF_TEST(thread, deep_recursion_fits_a_large_stack) {
  // 64 KiB of frames in a 1 MiB stack.
  auto f = async(thread_attributes{.stack_size = 1 << 20}, [] {
    struct rec {
      static int depth(int n) {
        volatile char pad[512];
        pad[0] = static_cast<char>(n);
        return n == 0 ? pad[0] : depth(n - 1) + 1;
      }
    };
    return rec::depth(128);
  });
  EXPECT_EQ(co_await std::move(f), 128);
}

// The guard page turns a stack overflow into a fault, not corruption.
TEST(thread_death, stack_overflow_hits_the_guard_page) {
#if defined(REEF_TSAN) || defined(REEF_ASAN)
  // The sanitizers report the overflow themselves, in their own way.
  GTEST_SKIP() << "stack overflow is the sanitizer's to report";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        testing::run_in_reactor([]() -> future<> {
          return async(thread_attributes{.stack_size = 16 * 1024}, [] {
            struct rec {
              // Deeper than any 16 KiB stack; the bound only keeps the
              // compiler from calling the recursion infinite.
              static int depth(int n) {
                volatile char pad[1024];
                pad[0] = static_cast<char>(n);
                return n > (1 << 20) ? 0 : depth(n + 1) + pad[0];
              }
            };
            return rec::depth(0);
          }).discard_result();
        });
      },
      "");
}

}  // namespace
}  // namespace reef
