// shared_future and abort_source.
#include "core/shared_future.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "core/abort_source.h"
#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(shared_future, every_consumer_gets_the_value) {
  promise<std::string> p;
  shared_future<std::string> shared(p.get_future());
  auto a = shared.get_future();
  auto b = shared.get_future();
  EXPECT_FALSE(shared.available());
  p.set_value("both");
  EXPECT_EQ(co_await std::move(a), "both");
  EXPECT_EQ(co_await std::move(b), "both");
  EXPECT_EQ(co_await shared.get_future(), "both") << "late consumers too";
}

REEF_TEST(shared_future, every_consumer_gets_the_exception) {
  promise<> p;
  shared_future<> shared(p.get_future());
  auto a = shared.get_future();
  p.set_exception(std::runtime_error("shared failure"));
  EXPECT_THROW(co_await std::move(a), std::runtime_error);
  EXPECT_TRUE(shared.failed());
  EXPECT_THROW(co_await shared.get_future(), std::runtime_error);
}

REEF_TEST(abort_source, subscribers_are_called_once_in_order) {
  abort_source as;
  std::string calls;
  auto a = as.subscribe([&] { calls += "a"; });
  auto b = as.subscribe([&] { calls += "b"; });
  {
    auto dropped = as.subscribe([&] { calls += "x"; });
  }
  EXPECT_FALSE(as.abort_requested());
  as.request_abort();
  as.request_abort();
  EXPECT_EQ(calls, "ab");
  EXPECT_TRUE(as.abort_requested());
  EXPECT_THROW(as.check(), abort_requested_exception);
  EXPECT_FALSE(as.subscribe([&] { calls += "late"; }).has_value());
  return make_ready_future<>();
}

REEF_TEST(abort_source, moved_subscription_stays_registered) {
  abort_source as;
  int calls = 0;
  auto s = as.subscribe([&] { ++calls; });
  auto moved = std::move(*s);
  s.reset();
  as.request_abort();
  EXPECT_EQ(calls, 1);
  return make_ready_future<>();
}

REEF_TEST(abort_source, sleep_abortable_ends_early) {
  abort_source as;
  auto start = steady_clock_type::now();
  auto f = sleep_abortable(10s, as);
  co_await sleep(1ms);
  as.request_abort();
  EXPECT_THROW(co_await std::move(f), abort_requested_exception);
  EXPECT_LT(steady_clock_type::now() - start, 5s);
  EXPECT_THROW(co_await sleep_abortable(1s, as), abort_requested_exception);
  abort_source quiet;
  co_await sleep_abortable(1ms, quiet);  // not aborted: a plain sleep
}

}  // namespace
}  // namespace reef
