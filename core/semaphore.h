// A counting semaphore for asynchronous code: limits concurrency (how many
// requests are in flight, how much memory they hold) without blocking.
//
//   semaphore limit(100);
//   return with_semaphore(limit, 1, [] { return handle_request(); });
//
// Waiters are served strictly in arrival order: a large request at the head
// is not overtaken by smaller ones behind it (no starvation). A wait may
// carry a timeout (it then fails with semaphore_timed_out); broken() fails
// every waiter and every later wait.
//
// Thread rules: one thread (shard); waiters' promises are fulfilled on it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

#include "core/assert.h"
#include "core/do_with.h"
#include "core/future.h"
#include "core/timed_waiters.h"
#include "core/timer.h"
#include "core/with_timeout.h"

namespace reef {

/// What waits fail with after broken() (unless broken with another one).
class broken_semaphore : public std::exception {
 public:
  const char* what() const noexcept override { return "semaphore broken"; }
};

/// What a wait with a timeout fails with when the time is up.
class semaphore_timed_out : public timed_out_error {
 public:
  const char* what() const noexcept override { return "semaphore timed out"; }
};

template <typename Clock = steady_clock_type>
class basic_semaphore {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  /// The most units a semaphore can count.
  static constexpr std::size_t max_counter() noexcept {
    return static_cast<std::size_t>(std::numeric_limits<ssize_t>::max());
  }

  explicit basic_semaphore(std::size_t count) noexcept : _count(static_cast<ssize_t>(count)) {
    REEF_ASSERT(count <= max_counter());
  }
  basic_semaphore(const basic_semaphore&) = delete;
  basic_semaphore& operator=(const basic_semaphore&) = delete;
  /// Fails the remaining waiters with broken_semaphore.
  ~basic_semaphore() { broken(); }

  /// Resolves once `units` are available and every earlier waiter has been
  /// served; takes them.
  future<> wait(std::size_t units = 1) noexcept { return wait_impl(units, std::nullopt); }

  /// Like wait(units), failing with semaphore_timed_out at `timeout`.
  future<> wait(time_point timeout, std::size_t units = 1) noexcept {
    return wait_impl(units, timeout);
  }

  /// Like wait(units), failing with semaphore_timed_out after `timeout`
  /// (a timeout too long to represent never expires).
  future<> wait(duration timeout, std::size_t units = 1) noexcept {
    time_point now = Clock::now();
    if (timeout > time_point::max() - now) return wait_impl(units, std::nullopt);
    return wait_impl(units, now + timeout);
  }

  /// Takes `units` now if they are available and nobody waits.
  bool try_wait(std::size_t units = 1) noexcept {
    if (may_proceed(units)) {
      _count -= static_cast<ssize_t>(units);
      return true;
    }
    return false;
  }

  /// Returns `units`, serving waiters in order.
  void signal(std::size_t units = 1) noexcept {
    if (_exception) return;
    _count += static_cast<ssize_t>(units);
    wake();
  }

  /// Takes `units` whether or not they are available (the count may go
  /// negative): for work that must proceed but should hold back others.
  void consume(std::size_t units = 1) noexcept {
    if (_exception) return;
    _count -= static_cast<ssize_t>(units);
  }

  /// Units available now (negative after over-consumption).
  ssize_t available_units() const noexcept { return _count; }

  /// How many wait.
  std::size_t waiters() const noexcept { return _waiters.size(); }

  /// Fails every waiter, and every later wait, with broken_semaphore.
  void broken() noexcept { broken(std::make_exception_ptr(broken_semaphore())); }

  /// Fails every waiter, and every later wait, with `ex`.
  void broken(std::exception_ptr ex) noexcept {
    _exception = std::move(ex);
    _waiters.fail_all(_exception);
  }

 private:
  bool may_proceed(std::size_t units) const noexcept {
    return _waiters.empty() && _count >= 0 && static_cast<std::size_t>(_count) >= units;
  }

  future<> wait_impl(std::size_t units, std::optional<time_point> timeout) noexcept {
    if (_exception) return make_exception_future<>(_exception);
    if (units > max_counter()) {
      // Could never be served, and would hold back every later waiter.
      return make_exception_future<>(
          std::invalid_argument("semaphore::wait: more units than a semaphore can count"));
    }
    if (may_proceed(units)) {
      _count -= static_cast<ssize_t>(units);
      return make_ready_future<>();
    }
    // The head leaving at its timeout may let the ones behind it in.
    return _waiters.add(
        units, timeout, [] { return std::make_exception_ptr(semaphore_timed_out()); }, [this] { wake(); });
  }

  void wake() noexcept {
    while (!_waiters.empty() && _count >= 0 && static_cast<std::size_t>(_count) >= _waiters.front()->extra) {
      _count -= static_cast<ssize_t>(_waiters.front()->extra);
      _waiters.complete_front();
    }
  }

  ssize_t _count;
  std::exception_ptr _exception;
  core_internal::timed_waiters<Clock, std::size_t> _waiters;  // extra: the units each wants
};

using semaphore = basic_semaphore<>;

/// Units taken from a semaphore, returned when this object is destroyed.
template <typename Clock = steady_clock_type>
class semaphore_units {
 public:
  semaphore_units() noexcept = default;
  semaphore_units(basic_semaphore<Clock>& sem, std::size_t units) noexcept
      : _sem(&sem), _units(units) {}
  semaphore_units(semaphore_units&& o) noexcept
      : _sem(std::exchange(o._sem, nullptr)), _units(std::exchange(o._units, 0)) {}
  semaphore_units& operator=(semaphore_units&& o) noexcept {
    if (this != &o) {
      return_all();
      _sem = std::exchange(o._sem, nullptr);
      _units = std::exchange(o._units, 0);
    }
    return *this;
  }
  semaphore_units(const semaphore_units&) = delete;
  semaphore_units& operator=(const semaphore_units&) = delete;
  ~semaphore_units() { return_all(); }

  /// Returns `units` of the held ones now. REQUIRES: units <= count().
  void return_units(std::size_t units) noexcept {
    REEF_ASSERT(units <= _units, "returning more units than held");
    _units -= units;
    if (_sem != nullptr) _sem->signal(units);
  }
  /// Returns all held units now.
  void return_all() noexcept {
    if (_units > 0) return_units(_units);
  }
  /// Gives up the units without returning them; returns how many.
  std::size_t release() noexcept { return std::exchange(_units, 0); }
  /// Moves `units` of the held ones into a new object.
  semaphore_units split(std::size_t units) noexcept {
    REEF_ASSERT(units <= _units, "splitting more units than held");
    _units -= units;
    return semaphore_units(*_sem, units);
  }
  std::size_t count() const noexcept { return _units; }

 private:
  basic_semaphore<Clock>* _sem = nullptr;
  std::size_t _units = 0;
};

/// Waits for `units` and holds them in the returned object.
template <typename Clock>
future<semaphore_units<Clock>> get_units(basic_semaphore<Clock>& sem, std::size_t units) noexcept {
  return sem.wait(units).then([&sem, units] { return semaphore_units<Clock>(sem, units); });
}

/// Like get_units(sem, units), failing with semaphore_timed_out at `timeout`.
template <typename Clock>
future<semaphore_units<Clock>> get_units(basic_semaphore<Clock>& sem, std::size_t units,
                                         typename Clock::time_point timeout) noexcept {
  return sem.wait(timeout, units).then([&sem, units] { return semaphore_units<Clock>(sem, units); });
}

/// Takes `units` now if available and nobody waits.
template <typename Clock>
std::optional<semaphore_units<Clock>> try_get_units(basic_semaphore<Clock>& sem,
                                                    std::size_t units) noexcept {
  if (!sem.try_wait(units)) return std::nullopt;
  return semaphore_units<Clock>(sem, units);
}

/// Takes `units` at once, available or not (see basic_semaphore::consume).
template <typename Clock>
semaphore_units<Clock> consume_units(basic_semaphore<Clock>& sem, std::size_t units) noexcept {
  sem.consume(units);
  return semaphore_units<Clock>(sem, units);
}

/// Runs `func()` holding `units` of `sem`, returning them when its future
/// resolves. `func` runs on this thread and is destroyed when its future
/// resolves (so a coroutine lambda may use its captures throughout).
template <typename Clock, typename Func>
futurize_t<std::invoke_result_t<Func&>> with_semaphore(basic_semaphore<Clock>& sem,
                                                      std::size_t units, Func&& func) noexcept {
  return get_units(sem, units).then([func = std::forward<Func>(func)](
                                        semaphore_units<Clock>&& held) mutable {
    return do_with(std::move(func), std::move(held),
                   [](std::decay_t<Func>& f, semaphore_units<Clock>&) { return futurize_invoke(f); });
  });
}

}  // namespace reef
