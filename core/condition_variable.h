// A condition variable for asynchronous code: waiters sleep (as futures)
// until signal() or broadcast(); there is no mutex, since a shard's code
// never runs concurrently with itself.
//
//   condition_variable cv;
//   future<> consumer() { return cv.wait([this] { return !_items.empty(); }); }
//   void producer(item i) { _items.push_back(i); cv.signal(); }
//
// Thread rules: one thread (shard).
#pragma once

#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

#include "core/future.h"
#include "core/loop.h"
#include "core/timer.h"
#include "core/timed_waiters.h"
#include "core/with_timeout.h"

namespace reef {

/// What waits fail with after broken().
class broken_condition_variable : public std::exception {
 public:
  const char* what() const noexcept override { return "condition variable broken"; }
};

/// What a wait with a timeout fails with when the time is up.
class condition_variable_timed_out : public timed_out_error {
 public:
  const char* what() const noexcept override { return "condition variable timed out"; }
};

class condition_variable {
 public:
  using clock = steady_clock_type;
  using time_point = clock::time_point;
  using duration = clock::duration;

  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  /// Fails the remaining waiters with broken_condition_variable.
  ~condition_variable() { broken(); }

  /// Resolves at the next signal() that picks it, or broadcast().
  future<> wait() noexcept { return wait_impl(false, time_point()); }

  /// Like wait(), failing with condition_variable_timed_out at `timeout`.
  future<> wait(time_point timeout) noexcept { return wait_impl(true, timeout); }
  future<> wait(duration timeout) noexcept {
    time_point now = clock::now();
    // A timeout too long to represent never expires.
    if (timeout > time_point::max() - now) return wait_impl(false, time_point());
    return wait_impl(true, now + timeout);
  }

  /// Resolves once `pred()` holds, checking it now and after each wake-up.
  /// `pred` is called on this thread and destroyed when the future resolves.
  template <typename Pred>
    requires std::is_invocable_r_v<bool, Pred&>
  future<> wait(Pred&& pred) noexcept {
    return repeat([this, pred = std::forward<Pred>(pred)]() mutable -> future<stop_iteration> {
      if (pred()) return make_ready_future<stop_iteration>(stop_iteration::yes);
      return wait().then([] { return stop_iteration::no; });
    });
  }

  /// Like wait(pred), failing with condition_variable_timed_out at `timeout`.
  template <typename Pred>
    requires std::is_invocable_r_v<bool, Pred&>
  future<> wait(time_point timeout, Pred&& pred) noexcept {
    return repeat([this, timeout, pred = std::forward<Pred>(pred)]() mutable -> future<stop_iteration> {
      if (pred()) return make_ready_future<stop_iteration>(stop_iteration::yes);
      return wait(timeout).then([] { return stop_iteration::no; });
    });
  }

  /// Wakes the longest waiter, if any.
  void signal() noexcept {
    if (!_waiters.empty()) _waiters.complete_front();
  }

  /// Wakes every waiter.
  void broadcast() noexcept {
    while (!_waiters.empty()) _waiters.complete_front();
  }

  /// Fails every waiter, and every later wait, with
  /// broken_condition_variable.
  void broken() noexcept {
    _broken = true;
    _waiters.fail_all(std::make_exception_ptr(broken_condition_variable()));
  }

  /// How many wait.
  std::size_t waiters() const noexcept { return _waiters.size(); }

 private:
  future<> wait_impl(bool timed, time_point timeout) noexcept {
    if (_broken) return make_exception_future<>(broken_condition_variable());
    return _waiters.add(
        {}, timed ? std::optional<time_point>(timeout) : std::nullopt,
        [] { return std::make_exception_ptr(condition_variable_timed_out()); }, [] {});
  }

  core_internal::timed_waiters<clock> _waiters;
  bool _broken = false;
};

}  // namespace reef
