#include "core/manual_clock.h"

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "core/with_timeout.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(manual_clock, timers_fire_when_the_test_moves_time_not_before) {
  const auto start = manual_clock::now();
  auto ten = sleep<manual_clock>(10s);
  auto twenty = sleep<manual_clock>(20s);
  co_await sleep(2ms);  // real time passes: manual time does not
  EXPECT_FALSE(ten.available());
  manual_clock::advance(9s);
  co_await yield();
  EXPECT_FALSE(ten.available());
  manual_clock::advance(1s);
  co_await std::move(ten);
  EXPECT_FALSE(twenty.available());
  manual_clock::advance(15s);
  co_await std::move(twenty);
  EXPECT_EQ(manual_clock::now() - start, 25s);
}

REEF_TEST(manual_clock, a_timeout_on_manual_time) {
  promise<int> never;
  auto timed = with_timeout(manual_clock::now() + 1h, never.get_future());
  co_await yield();
  EXPECT_FALSE(timed.available());
  manual_clock::advance(1h);
  EXPECT_THROW(co_await std::move(timed), timed_out_error);
  timer<manual_clock> periodic;
  int ticks = 0;
  periodic.set_callback([&] { ++ticks; });
  periodic.arm_periodic(1s);
  for (int i = 0; i < 5; ++i) manual_clock::advance(1s);
  EXPECT_EQ(ticks, 5);
  periodic.cancel();
}

}  // namespace
}  // namespace reef
