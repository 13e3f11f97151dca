#include "core/when_any.h"

#include <stdexcept>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(when_any, the_first_to_resolve_wins_and_the_rest_stay_valid) {
  promise<int> a, b, c;
  std::vector<future<int>> fs;
  fs.push_back(a.get_future());
  fs.push_back(b.get_future());
  fs.push_back(c.get_future());
  auto any = when_any(fs.begin(), fs.end());
  EXPECT_FALSE(any.available());
  b.set_value(2);
  auto r = co_await std::move(any);
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.futures.size(), 3u);
  EXPECT_EQ(co_await std::move(r.futures[1]), 2);
  c.set_value(3);
  a.set_exception(std::runtime_error("late"));
  EXPECT_EQ(co_await std::move(r.futures[2]), 3) << "the others can still be awaited";
  EXPECT_THROW(co_await std::move(r.futures[0]), std::runtime_error);
}

REEF_TEST(when_any, a_ready_input_wins_at_once_lowest_index_first) {
  promise<int> pending;
  std::vector<future<int>> fs;
  fs.push_back(pending.get_future());
  fs.push_back(make_ready_future<int>(7));
  fs.push_back(make_ready_future<int>(8));
  auto any = when_any(fs.begin(), fs.end());
  EXPECT_TRUE(any.available());
  auto r = any.get();
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.futures[1].get(), 7);
  pending.set_value(0);
  EXPECT_EQ(co_await std::move(r.futures[0]), 0);
  r.futures[2].ignore_ready_future();
  // Nothing to wait for: index 0 of nothing, at once.
  std::vector<future<int>> none;
  auto empty = when_any(none.begin(), none.end());
  EXPECT_TRUE(empty.available());
  EXPECT_TRUE(empty.get().futures.empty());
}

REEF_TEST(when_any, a_failure_can_be_the_first) {
  auto r = co_await when_any(sleep(50ms).then([] { return 1; }),
                             make_exception_future<int>(std::logic_error("first")));
  EXPECT_EQ(r.index, 1u);
  EXPECT_THROW(std::get<1>(r.futures).get(), std::logic_error);
  EXPECT_EQ(co_await std::move(std::get<0>(r.futures)), 1);
}

REEF_TEST(when_any, of_arguments_of_different_types) {
  promise<> slow;
  auto r = co_await when_any(slow.get_future(), sleep(1ms).then([] { return std::string("quick"); }));
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(std::get<1>(r.futures).get(), "quick");
  slow.set_value();
  co_await std::move(std::get<0>(r.futures));
}

}  // namespace
}  // namespace reef
