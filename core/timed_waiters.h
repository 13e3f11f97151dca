// The waiters of a semaphore or a condition variable: a FIFO of promises,
// each with an optional timeout. What the two share, kept once.
//
// Each waiter is one allocation (its promise, its timer, its place in the
// list, and what the owner keeps with it, `Extra`). A waiter whose time runs
// out leaves the list, its future failing with the owner's exception; the
// owner is then told (on_expired), since the head leaving may unblock the
// others.
//
// Thread rules: one thread (shard), like its owner.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

#include "core/future.h"
#include "core/timer.h"

namespace reef::core_internal {

struct no_extra {};

template <typename Clock, typename Extra = no_extra>
class timed_waiters {
 public:
  using time_point = typename Clock::time_point;

  struct waiter {
    promise<> done;
    timer<Clock> expiry;
    Extra extra;
    waiter* prev = nullptr;
    waiter* next = nullptr;
  };

  timed_waiters() noexcept = default;
  timed_waiters(const timed_waiters&) = delete;
  timed_waiters& operator=(const timed_waiters&) = delete;
  ~timed_waiters() { fail_all(std::make_exception_ptr(broken_promise())); }

  /// Queues a waiter with `extra`; its future resolves by complete(), or
  /// fails with timed_out() at `timeout`, after which on_expired() runs.
  /// `timed_out` and `on_expired` are called on this thread and kept by the
  /// waiter until it leaves.
  template <typename TimedOut, typename OnExpired>
  future<> add(Extra extra, std::optional<time_point> timeout, TimedOut timed_out, OnExpired on_expired) noexcept {
    waiter* w;
    try {
      w = new waiter{promise<>(), timer<Clock>(), std::move(extra)};
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
    future<> f = w->done.get_future();
    link(w);
    if (timeout) {
      w->expiry.set_callback([this, w, timed_out = std::move(timed_out), on_expired = std::move(on_expired)]() mutable {
        auto expired = std::move(on_expired);  // the lambda dies with `w`
        unlink(w);
        w->done.set_exception(timed_out());
        delete w;
        expired();
      });
      w->expiry.arm(*timeout);
    }
    return f;
  }

  waiter* front() const noexcept { return _head; }
  bool empty() const noexcept { return _head == nullptr; }
  std::size_t size() const noexcept { return _size; }

  /// Resolves the front waiter's future.
  /// REQUIRES: !empty().
  void complete_front() noexcept {
    waiter* w = _head;
    unlink(w);
    w->expiry.cancel();
    w->done.set_value();
    delete w;
  }

  /// Fails every waiter with `ex`.
  void fail_all(const std::exception_ptr& ex) noexcept {
    while (waiter* w = _head) {
      unlink(w);
      w->expiry.cancel();
      w->done.set_exception(ex);
      delete w;
    }
  }

 private:
  void link(waiter* w) noexcept {
    w->prev = _tail;
    (_tail != nullptr ? _tail->next : _head) = w;
    _tail = w;
    ++_size;
  }

  void unlink(waiter* w) noexcept {
    (w->prev != nullptr ? w->prev->next : _head) = w->next;
    (w->next != nullptr ? w->next->prev : _tail) = w->prev;
    --_size;
  }

  waiter* _head = nullptr;
  waiter* _tail = nullptr;
  std::size_t _size = 0;
};

}  // namespace reef::core_internal
