#include "core/semaphore.h"

#include <chrono>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(semaphore, wait_takes_available_units_at_once) {
  semaphore sem(3);
  auto f = sem.wait(2);
  EXPECT_TRUE(f.available());
  co_await std::move(f);
  EXPECT_EQ(sem.available_units(), 1);
  EXPECT_FALSE(sem.try_wait(2));
  EXPECT_TRUE(sem.try_wait(1));
  EXPECT_EQ(sem.available_units(), 0);
}

REEF_TEST(semaphore, waiters_are_served_in_arrival_order_without_overtaking) {
  semaphore sem(0);
  std::vector<int> order;
  auto big = sem.wait(2).then([&] { order.push_back(2); });
  auto small = sem.wait(1).then([&] { order.push_back(1); });
  sem.signal(1);
  co_await yield();
  co_await yield();
  EXPECT_TRUE(order.empty()) << "the small request must not overtake the big one";
  EXPECT_EQ(sem.waiters(), 2u);
  sem.signal(2);
  co_await std::move(big);
  co_await std::move(small);
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  EXPECT_EQ(sem.available_units(), 0);
}

REEF_TEST(semaphore, a_new_waiter_queues_behind_existing_ones) {
  semaphore sem(0);
  auto first = sem.wait(2);
  sem.signal(1);
  EXPECT_FALSE(sem.try_wait(1)) << "units exist, but a waiter came first";
  sem.signal(1);
  co_await std::move(first);
}

REEF_TEST(semaphore, wait_times_out_and_frees_its_place) {
  semaphore sem(0);
  auto timed = sem.wait(2ms, 2);
  auto patient = sem.wait(1);
  sem.signal(1);  // not enough for the head, which holds the other back
  bool timed_out = false;
  try {
    co_await std::move(timed);
  } catch (const semaphore_timed_out&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  co_await std::move(patient);  // served once the head left
  EXPECT_EQ(sem.waiters(), 0u);
}

REEF_TEST(semaphore, impossible_requests_fail_at_once) {
  semaphore sem(1);
  EXPECT_THROW(co_await sem.wait(semaphore::max_counter() + 1), std::invalid_argument);
  EXPECT_EQ(sem.waiters(), 0u) << "nothing left to hold the others back";
  co_await sem.wait(1);
  // A timeout too long to represent: a plain wait.
  auto forever = sem.wait(std::chrono::steady_clock::duration::max());
  sem.signal();
  co_await std::move(forever);
}

REEF_TEST(semaphore, broken_fails_waiters_and_later_waits) {
  semaphore sem(0);
  auto waiting = sem.wait();
  sem.broken();
  EXPECT_THROW(co_await std::move(waiting), broken_semaphore);
  EXPECT_THROW(co_await sem.wait(), broken_semaphore);
}

REEF_TEST(semaphore, units_return_when_destroyed) {
  semaphore sem(2);
  {
    auto units = co_await get_units(sem, 2);
    EXPECT_EQ(units.count(), 2u);
    EXPECT_EQ(sem.available_units(), 0);
    auto part = units.split(1);
    part.return_all();
    EXPECT_EQ(sem.available_units(), 1);
  }
  EXPECT_EQ(sem.available_units(), 2);
  auto none = try_get_units(sem, 3);
  EXPECT_FALSE(none.has_value());
  {
    auto over = consume_units(sem, 5);
    EXPECT_EQ(sem.available_units(), -3);
  }
  EXPECT_EQ(sem.available_units(), 2);
}

REEF_TEST(semaphore, with_semaphore_limits_concurrency) {
  semaphore sem(2);
  int running = 0, peak = 0;
  std::vector<future<>> all;
  for (int i = 0; i < 6; ++i) {
    all.push_back(with_semaphore(sem, 1, [&]() -> future<> {
      peak = std::max(peak, ++running);
      co_await sleep(200us);
      --running;
    }));
  }
  for (auto& f : all) co_await std::move(f);
  EXPECT_EQ(peak, 2);
  EXPECT_EQ(sem.available_units(), 2);
}

}  // namespace
}  // namespace reef
