// when_all, when_all_succeed, map_reduce and do_with.
#include "core/when_all.h"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/do_with.h"
#include "core/map_reduce.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

future<int> later(int v, std::chrono::microseconds delay) {
  co_await sleep(delay);
  co_return v;
}

future<int> fail_later(std::chrono::microseconds delay) {
  co_await sleep(delay);
  throw std::runtime_error("failed later");
}

REEF_TEST(when_all, returns_every_input_ready_with_mixed_failures) {
  auto [a, b, c] = co_await when_all(later(1, 300us), fail_later(100us), make_ready_future<>());
  EXPECT_EQ(a.get(), 1);
  EXPECT_TRUE(b.failed());
  EXPECT_THROW(b.get(), std::runtime_error);
  EXPECT_TRUE(c.available());
  c.get();
}

REEF_TEST(when_all, all_ready_inputs_resolve_at_once) {
  auto f = when_all(make_ready_future<int>(1), make_ready_future<std::string>("x"));
  EXPECT_TRUE(f.available());
  auto [a, b] = co_await std::move(f);
  EXPECT_EQ(a.get(), 1);
  EXPECT_EQ(b.get(), "x");
}

REEF_TEST(when_all, range_keeps_order) {
  std::vector<future<int>> in;
  for (int i = 0; i < 5; ++i) in.push_back(later(i, std::chrono::microseconds(500 - 100 * i)));
  auto out = co_await when_all(in.begin(), in.end());
  EXPECT_EQ(out.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out[i].get(), i);
}

REEF_TEST(when_all_succeed, values_in_argument_order_without_void) {
  auto [a, b] = co_await when_all_succeed(later(1, 200us), make_ready_future<>(),
                                          later(2, 100us));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  co_await when_all_succeed(make_ready_future<>(), sleep(100us));
}

REEF_TEST(when_all_succeed, first_failure_wins_after_all_are_done) {
  int finished = 0;
  auto slow = later(5, 500us).then([&](int v) {
    ++finished;
    return v;
  });
  auto f = when_all_succeed(std::move(slow), fail_later(100us));
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(finished, 1);
}

REEF_TEST(when_all_succeed, range_of_values) {
  std::vector<future<int>> in;
  for (int i = 0; i < 4; ++i) in.push_back(later(i * 10, 100us));
  auto values = co_await when_all_succeed(in.begin(), in.end());
  EXPECT_EQ(values, (std::vector<int>{0, 10, 20, 30}));
  std::vector<future<int>> bad;
  bad.push_back(later(1, 100us));
  bad.push_back(fail_later(50us));
  EXPECT_THROW(co_await when_all_succeed(bad.begin(), bad.end()), std::runtime_error);
}

REEF_TEST(map_reduce, sums_mapped_values) {
  std::vector<int> in{1, 2, 3, 4};
  int total = co_await map_reduce(
      in, [](int v) { return later(v * v, 100us); }, 0, [](int acc, int v) { return acc + v; });
  EXPECT_EQ(total, 30);
}

REEF_TEST(map_reduce, fails_with_a_mappers_failure) {
  std::vector<int> in{1, 2};
  auto f = map_reduce(
      in,
      [](int v) -> future<int> {
        if (v == 2) return fail_later(50us);
        return later(v, 50us);
      },
      0, [](int acc, int v) { return acc + v; });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
}

REEF_TEST(do_with, keeps_values_alive_until_the_future_resolves) {
  auto watch = std::make_shared<int>(0);
  std::weak_ptr<int> weak = watch;
  auto f = do_with(std::move(watch), std::string("held"), [](std::shared_ptr<int>& p, std::string& s) -> future<size_t> {
    co_await sleep(200us);
    *p = 1;
    co_return s.size();
  });
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(co_await std::move(f), 4u);
  EXPECT_TRUE(weak.expired());
}

REEF_TEST(do_with, passes_a_failure_and_still_frees) {
  auto watch = std::make_shared<int>(0);
  std::weak_ptr<int> weak = watch;
  auto f = do_with(std::move(watch), [](std::shared_ptr<int>&) -> future<> {
    co_await sleep(100us);
    throw std::runtime_error("inside");
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_TRUE(weak.expired());
}

REEF_TEST(do_with, keeps_a_coroutine_lambda_alive_too) {
  auto text = std::make_shared<std::string>("captured");
  auto f = do_with(1, [text](int& n) -> future<size_t> {
    co_await sleep(200us);  // the lambda's captures must survive this
    co_return text->size() + static_cast<size_t>(n);
  });
  text.reset();  // the lambda's copy is the only one left
  EXPECT_EQ(co_await std::move(f), 9u);
}

}  // namespace
}  // namespace reef
