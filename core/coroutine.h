// C++20 coroutines that return reef futures.
//
//   future<int> add_later(future<int> a, future<int> b) {
//     int x = co_await std::move(a);
//     int y = co_await std::move(b);
//     co_return x + y;
//   }
//
// Including this header makes `future<T>` a coroutine return type and makes
// futures awaitable. `co_await` on a ready future does not suspend (unless
// the thread must yield: need_preempt()); on an unready one the coroutine
// itself is the continuation that the promise schedules, so awaiting costs
// no allocation: the only allocation is the coroutine frame (the promise
// type is a task, so frames come from the per-thread task memory cache of
// core/task.h). An exception
// thrown in the body, or by an awaited future, fails the returned future.
//
// Thread rules: a coroutine runs on the thread that called it and resumes
// there (its awaited futures belong to that thread).
//
// Lifetime pitfalls, as with any coroutine:
//   * Reference parameters are references to the caller's objects, which may
//     be gone after the first suspension. Take parameters by value.
//   * A lambda coroutine's captures live in the lambda object, not in the
//     frame: `[x] () -> future<> { co_await f(); use(x); }` reads a dead `x`
//     if the lambda object is destroyed while the coroutine is suspended.
//     That happens when the lambda is a temporary and the future outlives the
//     full-expression (`auto fut = call(lambda); ... co_await fut;`), and
//     when it is given to then()/then_wrapped()/finally(), which destroy
//     their function as soon as it returns its (unready) future. Safe: pass
//     state as parameters (the frame copies them); co_await the call in the
//     same full-expression; or use a helper that keeps the function until
//     its future resolves: repeat, do_until, keep_doing, do_for_each,
//     max_concurrent_for_each, map_reduce, with_gate, with_semaphore and
//     do_with all do. parallel_for_each calls the function where the caller
//     keeps it.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "core/future.h"
#include "core/task.h"

namespace reef {
namespace core_internal {

/// The promise_type of a coroutine returning `future<T>`. It is also the task
/// that resumes the coroutine, so suspending allocates nothing.
template <typename T>
class coroutine_promise_base : public task {
 public:
  future<T> get_return_object() noexcept { return _result.get_future(); }
  std::suspend_never initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { _result.set_exception(std::current_exception()); }
  /// Fails the coroutine's future without a throw (coroutine::return_exception).
  void set_exception(std::exception_ptr ex) noexcept { _result.set_exception(std::move(ex)); }

 protected:
  promise<T> _result;
};

template <typename T>
class coroutine_promise final : public coroutine_promise_base<T> {
 public:
  template <typename U = T>
  void return_value(U&& v) {
    this->_result.set_value(std::forward<U>(v));
  }

  void run_and_dispose() noexcept override {
    std::coroutine_handle<coroutine_promise>::from_promise(*this).resume();
  }
};

template <>
class coroutine_promise<void> final : public coroutine_promise_base<void> {
 public:
  void return_void() noexcept { this->_result.set_value(); }

  void run_and_dispose() noexcept override {
    std::coroutine_handle<coroutine_promise>::from_promise(*this).resume();
  }
};

/// What `co_await future` does.
template <typename T>
class future_awaiter {
 public:
  explicit future_awaiter(future<T>&& f) noexcept : _future(std::move(f)) {}

  bool await_ready() const noexcept { return _future.available() && !need_preempt(); }

  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) noexcept {
    static_assert(std::is_base_of_v<task, Promise>,
                  "reef futures are awaited in coroutines that return reef futures");
    future_access::set_waiter_in_place(_future, &h.promise());
  }

  T await_resume() { return _future.get(); }

 private:
  future<T> _future;
};

}  // namespace core_internal

/// Awaits a future: resumes with its value or throws its exception.
template <typename T>
core_internal::future_awaiter<T> operator co_await(future<T>&& f) noexcept {
  return core_internal::future_awaiter<T>(std::move(f));
}

namespace coroutine {

/// `co_await coroutine::maybe_yield();` lets the reactor run other work if
/// the task quota is used up, and goes on at once otherwise: a preemption
/// point for long loops in a coroutine. Allocates nothing (the coroutine is
/// its own task).
class maybe_yield {
 public:
  bool await_ready() const noexcept { return !need_preempt(); }
  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) noexcept {
    static_assert(std::is_base_of_v<task, Promise>, "maybe_yield() in a coroutine that returns a reef future");
    schedule(&h.promise());
  }
  void await_resume() const noexcept {}
};

/// `co_await coroutine::return_exception(e);` ends the coroutine with `e`
/// as its future's exception, without throwing (cheaper, and usable where
/// a throw is not wanted); locals are destroyed as by a co_return. Never
/// resumes.
class return_exception {
 public:
  explicit return_exception(std::exception_ptr ex) noexcept : _ex(std::move(ex)) {}
  template <typename E, typename = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  explicit return_exception(E&& e) noexcept : _ex(std::make_exception_ptr(std::forward<E>(e))) {}

  bool await_ready() const noexcept { return false; }
  template <typename T>
  void await_suspend(std::coroutine_handle<core_internal::coroutine_promise<T>> h) noexcept {
    h.promise().set_exception(std::move(_ex));
    h.destroy();
  }
  void await_resume() const noexcept {}

 private:
  std::exception_ptr _ex;
};

/// `future<T> f = co_await coroutine::as_future(std::move(g));` waits for
/// `g` and hands it back ready, value or exception, without throwing.
template <typename T>
class as_future {
 public:
  explicit as_future(future<T>&& f) noexcept : _future(std::move(f)) {}
  bool await_ready() const noexcept { return _future.available() && !need_preempt(); }
  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) noexcept {
    static_assert(std::is_base_of_v<task, Promise>, "as_future() in a coroutine that returns a reef future");
    core_internal::future_access::set_waiter_in_place(_future, &h.promise());
  }
  future<T> await_resume() noexcept { return std::move(_future); }

 private:
  future<T> _future;
};

}  // namespace coroutine
}  // namespace reef

template <typename T, typename... Args>
struct std::coroutine_traits<reef::future<T>, Args...> {
  using promise_type = reef::core_internal::coroutine_promise<T>;
};
