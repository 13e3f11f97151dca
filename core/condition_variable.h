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
    if (_head != nullptr) wake(_head);
  }

  /// Wakes every waiter.
  void broadcast() noexcept {
    while (_head != nullptr) wake(_head);
  }

  /// Fails every waiter, and every later wait, with
  /// broken_condition_variable.
  void broken() noexcept {
    _broken = true;
    while (_head != nullptr) {
      waiter* w = _head;
      unlink(w);
      w->done.set_exception(broken_condition_variable());
      delete w;
    }
  }

  /// How many wait.
  std::size_t waiters() const noexcept { return _waiters; }

 private:
  struct waiter {
    promise<> done;
    timer<clock> expiry;
    waiter* prev = nullptr;
    waiter* next = nullptr;
  };

  future<> wait_impl(bool timed, time_point timeout) noexcept {
    if (_broken) return make_exception_future<>(broken_condition_variable());
    waiter* w;
    try {
      w = new waiter;
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
    future<> f = w->done.get_future();
    w->prev = _tail;
    (_tail != nullptr ? _tail->next : _head) = w;
    _tail = w;
    ++_waiters;
    if (timed) {
      w->expiry.set_callback([this, w] {
        unlink(w);
        w->done.set_exception(condition_variable_timed_out());
        delete w;
      });
      w->expiry.arm(timeout);
    }
    return f;
  }

  void wake(waiter* w) noexcept {
    unlink(w);
    w->expiry.cancel();
    w->done.set_value();
    delete w;
  }

  void unlink(waiter* w) noexcept {
    (w->prev != nullptr ? w->prev->next : _head) = w->next;
    (w->next != nullptr ? w->next->prev : _tail) = w->prev;
    --_waiters;
  }

  waiter* _head = nullptr;
  waiter* _tail = nullptr;
  std::size_t _waiters = 0;
  bool _broken = false;
};

}  // namespace reef
