// Futures and promises without a reactor: tasks run on a manual scheduler.
#include "core/future.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/testing/manual_scheduler.h"

namespace reef {
namespace {

using testing::manual_scheduler;

struct test_error : std::runtime_error {
  explicit test_error(const std::string& what) : std::runtime_error(what) {}
};

struct other_error : std::runtime_error {
  other_error() : std::runtime_error("other") {}
};

// Sets the preemption flag for the lifetime of the object.
struct preempt_scope {
  preempt_scope() { core_internal::preempt_requested.store(true); }
  ~preempt_scope() { core_internal::preempt_requested.store(false); }
};

TEST(future, ready_future_holds_value) {
  future<int> f = make_ready_future<int>(42);
  EXPECT_TRUE(f.available());
  EXPECT_FALSE(f.failed());
  EXPECT_EQ(f.get(), 42);
  EXPECT_FALSE(f.valid());
}

TEST(future, a_future_whose_continuation_took_it_is_invalid) {
  manual_scheduler sched;
  promise<int> p;
  future<int> f = p.get_future();
  future<int> g = f.then([](int v) { return v + 1; });
  EXPECT_FALSE(f.valid()) << "the continuation owns the result now";
  EXPECT_FALSE(f.available());
  EXPECT_DEATH((void)f.then([](int v) { return v; }), "invalid future");
  EXPECT_DEATH((void)f.then_wrapped([](future<int>&& x) { return x.get(); }), "invalid future");
  p.set_value(1);
  sched.run();
  EXPECT_EQ(g.get(), 2);
}

TEST(future, awaiting_a_taken_future_fails_an_assertion) {
  manual_scheduler sched;
  promise<int> p;
  future<int> f = p.get_future();
  future<int> g = f.then([](int v) { return v; });
  auto await_it = [](future<int>& taken) -> future<int> { co_return co_await std::move(taken); };
  EXPECT_DEATH((void)await_it(f), "invalid future");
  p.set_value(3);
  sched.run();
  EXPECT_EQ(g.get(), 3);
}

TEST(future, then_on_ready_future_runs_inline) {
  manual_scheduler sched;
  int seen = 0;
  future<> f = make_ready_future<int>(7).then([&](int v) { seen = v; });
  EXPECT_EQ(seen, 7);
  EXPECT_TRUE(f.available());
  EXPECT_EQ(sched.pending(), 0u);
}

TEST(future, then_on_ready_future_schedules_when_preemption_is_requested) {
  manual_scheduler sched;
  int seen = 0;
  future<> f = [&] {
    preempt_scope preempt;
    return make_ready_future<int>(7).then([&](int v) { seen = v; });
  }();
  EXPECT_EQ(seen, 0);
  EXPECT_FALSE(f.available());
  EXPECT_EQ(sched.run(), 1u);
  EXPECT_EQ(seen, 7);
  EXPECT_TRUE(f.available());
}

TEST(future, then_on_unready_future_runs_after_set_value) {
  manual_scheduler sched;
  promise<int> p;
  int seen = 0;
  future<int> f = p.get_future().then([&](int v) {
    seen = v;
    return v * 2;
  });
  EXPECT_FALSE(f.available());
  EXPECT_EQ(sched.pending(), 0u);
  p.set_value(21);
  EXPECT_EQ(seen, 0) << "the continuation runs as a task, not inside set_value";
  EXPECT_EQ(sched.pending(), 1u);
  sched.run();
  EXPECT_EQ(seen, 21);
  ASSERT_TRUE(f.available());
  EXPECT_EQ(f.get(), 42);
}

TEST(future, continuations_run_in_fulfillment_order) {
  manual_scheduler sched;
  std::vector<int> order;
  promise<> a, b, c;
  auto fa = a.get_future().then([&] { order.push_back(1); });
  auto fb = b.get_future().then([&] { order.push_back(2); });
  auto fc = c.get_future().then([&] { order.push_back(3); });
  c.set_value();
  a.set_value();
  b.set_value();
  sched.run();
  EXPECT_EQ(order, (std::vector<int>{3, 1, 2}));
}

TEST(future, then_accepts_an_lvalue_function_and_copies_it) {
  manual_scheduler sched;
  promise<int> p;
  int calls = 0;
  auto add_one = [&calls](int v) {
    ++calls;
    return v + 1;
  };
  future<int> f = p.get_future().then(add_one).then(add_one);
  p.set_value(1);
  sched.run();
  EXPECT_EQ(f.get(), 3);
  EXPECT_EQ(calls, 2);
}

TEST(future, chain_of_unready_continuations_passes_values_along) {
  manual_scheduler sched;
  promise<int> p;
  future<std::string> f = p.get_future()
                              .then([](int v) { return v + 1; })
                              .then([](int v) { return make_ready_future<int>(v * 10); })
                              .then([](int v) { return std::to_string(v); });
  p.set_value(4);
  sched.run();
  ASSERT_TRUE(f.available());
  EXPECT_EQ(f.get(), "50");
}

TEST(future, value_set_before_get_future_is_ready) {
  manual_scheduler sched;
  promise<std::string> p;
  p.set_value("early");
  future<std::string> f = p.get_future();
  ASSERT_TRUE(f.available());
  EXPECT_EQ(f.get(), "early");
}

TEST(future, moving_linked_future_and_promise_keeps_the_link) {
  manual_scheduler sched;
  auto p1 = std::make_unique<promise<int>>();
  future<int> f1 = p1->get_future();
  future<int> f2 = std::move(f1);
  promise<int> p2 = std::move(*p1);
  p1.reset();
  future<int> f3(std::move(f2));
  p2.set_value(5);
  ASSERT_TRUE(f3.available());
  EXPECT_EQ(f3.get(), 5);
}

TEST(future, move_only_values_travel) {
  manual_scheduler sched;
  promise<std::unique_ptr<int>> p;
  auto f = p.get_future().then([](std::unique_ptr<int> v) { return *v + 1; });
  p.set_value(std::make_unique<int>(9));
  sched.run();
  EXPECT_EQ(f.get(), 10);
}

TEST(future, destroying_unfulfilled_promise_breaks_the_future) {
  manual_scheduler sched;
  future<int> f = [] {
    promise<int> p;
    return p.get_future();
  }();
  ASSERT_TRUE(f.failed());
  EXPECT_THROW(f.get(), broken_promise);
}

TEST(future, broken_promise_reaches_a_continuation) {
  manual_scheduler sched;
  bool ran = false;
  future<> f = [&] {
    promise<int> p;
    return p.get_future().then([&](int) { ran = true; });
  }();
  sched.run();
  EXPECT_FALSE(ran);
  ASSERT_TRUE(f.failed());
  EXPECT_THROW(f.get(), broken_promise);
}

TEST(future, set_value_after_future_destroyed_is_harmless) {
  manual_scheduler sched;
  promise<int> p;
  { (void)p.get_future(); }
  p.set_value(1);
  EXPECT_EQ(sched.pending(), 0u);
}

TEST(future, exception_thrown_by_continuation_fails_the_future) {
  manual_scheduler sched;
  future<int> f = make_ready_future<>().then([]() -> int { throw test_error("boom"); });
  ASSERT_TRUE(f.failed());
  EXPECT_THROW(f.get(), test_error);
}

TEST(future, failed_future_skips_then_and_reaches_handle_exception) {
  manual_scheduler sched;
  promise<int> p;
  int thens = 0;
  std::string caught;
  future<int> f = p.get_future()
                      .then([&](int v) {
                        ++thens;
                        return v;
                      })
                      .then([&](int v) {
                        ++thens;
                        return v;
                      })
                      .handle_exception([&](std::exception_ptr ex) {
                        try {
                          std::rethrow_exception(ex);
                        } catch (const test_error& e) {
                          caught = e.what();
                        }
                        return -1;
                      });
  p.set_exception(test_error("bad"));
  sched.run();
  EXPECT_EQ(thens, 0);
  EXPECT_EQ(caught, "bad");
  EXPECT_EQ(f.get(), -1);
}

TEST(future, handle_exception_leaves_values_alone) {
  manual_scheduler sched;
  bool called = false;
  auto f = make_ready_future<int>(3).handle_exception([&](std::exception_ptr) {
    called = true;
    return 0;
  });
  EXPECT_FALSE(called);
  EXPECT_EQ(f.get(), 3);
}

TEST(future, handle_exception_type_catches_only_its_type) {
  manual_scheduler sched;
  auto matched = make_exception_future<int>(test_error("x")).handle_exception_type(
      [](const test_error& e) { return static_cast<int>(std::string(e.what()).size()); });
  EXPECT_EQ(matched.get(), 1);
  auto unmatched = make_exception_future<int>(other_error()).handle_exception_type(
      [](const test_error&) { return 0; });
  ASSERT_TRUE(unmatched.failed());
  EXPECT_THROW(unmatched.get(), other_error);
}

TEST(future, then_wrapped_sees_values_and_failures) {
  manual_scheduler sched;
  auto ok = make_ready_future<int>(1).then_wrapped([](future<int> f) { return f.get() + 1; });
  EXPECT_EQ(ok.get(), 2);
  auto bad = make_exception_future<int>(test_error("e")).then_wrapped([](future<int> f) {
    EXPECT_TRUE(f.failed());
    f.ignore_ready_future();
    return 5;
  });
  EXPECT_EQ(bad.get(), 5);
}

TEST(future, finally_runs_on_success_and_keeps_the_value) {
  manual_scheduler sched;
  promise<int> p;
  int runs = 0;
  auto f = p.get_future().finally([&] { ++runs; });
  p.set_value(8);
  sched.run();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(f.get(), 8);
}

TEST(future, finally_runs_on_failure_and_keeps_the_exception) {
  manual_scheduler sched;
  promise<int> p;
  int runs = 0;
  auto f = p.get_future().finally([&] { ++runs; });
  p.set_exception(test_error("kept"));
  sched.run();
  EXPECT_EQ(runs, 1);
  EXPECT_THROW(f.get(), test_error);
}

TEST(future, finally_waits_for_a_returned_future) {
  manual_scheduler sched;
  promise<> cleanup;
  auto f = make_ready_future<int>(2).finally([&] { return cleanup.get_future(); });
  EXPECT_FALSE(f.available());
  cleanup.set_value();
  sched.run();
  EXPECT_EQ(f.get(), 2);
}

TEST(future, failing_finally_replaces_the_value) {
  manual_scheduler sched;
  auto f = make_ready_future<int>(2).finally([] { throw other_error(); });
  EXPECT_THROW(f.get(), other_error);
}

TEST(future, discard_result_keeps_completion_and_failure) {
  manual_scheduler sched;
  EXPECT_FALSE(make_ready_future<int>(1).discard_result().failed());
  auto failed = make_exception_future<int>(test_error("d")).discard_result();
  EXPECT_THROW(failed.get(), test_error);
}

TEST(future, forward_to_moves_ready_and_unready_results) {
  manual_scheduler sched;
  promise<int> target1;
  auto f1 = target1.get_future();
  make_ready_future<int>(3).forward_to(std::move(target1));
  EXPECT_EQ(f1.get(), 3);

  promise<int> source;
  promise<int> target2;
  auto f2 = target2.get_future();
  source.get_future().forward_to(std::move(target2));
  EXPECT_FALSE(f2.available());
  source.set_value(4);
  ASSERT_TRUE(f2.available()) << "the source promise writes straight into the target future";
  EXPECT_EQ(f2.get(), 4);
}

TEST(future, futurize_invoke_turns_throw_into_failed_future) {
  auto f = futurize_invoke([]() -> int { throw test_error("t"); });
  ASSERT_TRUE(f.failed());
  EXPECT_THROW(f.get(), test_error);
  auto g = futurize_invoke([](int a, int b) { return a + b; }, 2, 3);
  EXPECT_EQ(g.get(), 5);
  auto h = futurize_invoke([] { return make_ready_future<int>(1); });
  static_assert(std::is_same_v<decltype(h), future<int>>);
  EXPECT_EQ(h.get(), 1);
}

TEST(future, unobserved_failed_future_is_reported_once) {
  manual_scheduler sched;
  std::size_t before = core_internal::failed_futures_ignored();
  {
    future<int> f = make_exception_future<int>(test_error("lost"));
    future<int> moved = std::move(f);  // moving does not report
  }
  EXPECT_EQ(core_internal::failed_futures_ignored(), before + 1);
  {
    future<int> f = make_exception_future<int>(test_error("seen"));
    EXPECT_THROW(f.get(), test_error);
  }
  {
    future<int> f = make_exception_future<int>(test_error("ignored on purpose"));
    f.ignore_ready_future();
  }
  EXPECT_EQ(core_internal::failed_futures_ignored(), before + 1);
}

TEST(future, then_on_a_failed_future_passes_the_exception_without_reporting) {
  manual_scheduler sched;
  std::size_t before = core_internal::failed_futures_ignored();
  auto f = make_exception_future<int>(test_error("x")).then([](int v) { return v; }).then([](int v) {
    return v;
  });
  EXPECT_EQ(core_internal::failed_futures_ignored(), before);
  EXPECT_THROW(f.get(), test_error);
}

TEST(future, continuation_captures_are_destroyed_when_its_promise_breaks) {
  manual_scheduler sched;
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool ran = false;
  future<> f = [&] {
    promise<> p;
    return p.get_future().then([&ran, token = std::move(token)] { ran = true; });
  }();
  sched.run();
  EXPECT_FALSE(ran);
  EXPECT_THROW(f.get(), broken_promise);
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace reef
