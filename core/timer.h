// Clocks and timers.
//
// `timer<Clock>` calls a function at a point in time, once or periodically.
// Timers live in the thread's timer queue (an indexed binary heap: arm and
// cancel are O(log n)), which the reactor owns and expires from its loop; a
// timer's callback runs on the reactor thread, outside any task, and should
// be short (typically it fulfills a promise).
//
// Clocks: `steady_clock_type` (std::chrono::steady_clock) and `lowres_clock`,
// the same clock as the reactor loop last read it: reading it is a load. The
// loop reads the clock at every iteration that follows work or a sleep, or
// while timers wait, and every 64th iteration of idle polling; so it lags
// the truth by at most one iteration's work (a task quota, usually far
// less), which is plenty for timeouts.
//
// Thread rules: a timer is armed, fires, is cancelled and is destroyed on the
// thread of the reactor it was armed on. Arming needs a running reactor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/assert.h"
#include "core/function.h"

namespace reef {

using steady_clock_type = std::chrono::steady_clock;

/// The steady clock as last read by this thread's reactor loop.
class lowres_clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<lowres_clock, duration>;
  static constexpr bool is_steady = true;

  /// The time the reactor last read; a fresh read on a thread with no
  /// reactor.
  static time_point now() noexcept;

  /// Called by the reactor once per loop iteration.
  static void update() noexcept;
  /// Sets the clock to `now`, a steady-clock reading just taken (the
  /// reactor's, at the end of a task batch: it saves a read).
  static void update(time_point now) noexcept;
};

namespace core_internal {

/// Nanoseconds of the steady clock: the one scale all timers use.
using timer_ns = std::int64_t;

inline timer_ns to_timer_ns(steady_clock_type::time_point tp) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}
inline timer_ns to_timer_ns(lowres_clock::time_point tp) noexcept {
  return tp.time_since_epoch().count();
}
/// Any other clock (manual_clock): its own nanoseconds.
template <typename Clock, typename Duration>
timer_ns to_timer_ns(std::chrono::time_point<Clock, Duration> tp) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

class timer_queue;

/// Where the timers of `Clock` live: the reactor's queue for the real
/// clocks; manual_clock has its own (core/manual_clock.h).
template <typename Clock>
timer_queue* timer_queue_for() noexcept;

/// What timer<Clock> shares whatever its clock.
///
/// States: idle (not armed), armed (in the heap), expiring (taken out of the
/// heap by timer_queue::expire(), its callback about to run).
class timer_base {
 public:
  timer_base() noexcept = default;
  explicit timer_base(noncopyable_function<void()> callback) noexcept
      : _callback(std::move(callback)) {}
  timer_base(const timer_base&) = delete;
  timer_base& operator=(const timer_base&) = delete;
  ~timer_base() { cancel(); }

  void set_callback(noncopyable_function<void()> callback) noexcept {
    _callback = std::move(callback);
  }
  bool armed() const noexcept { return _state == state::armed; }
  /// Disarms; true if the timer was armed.
  bool cancel() noexcept;

 protected:
  // Arms in queue `q` (nullptr: this thread's reactor's).
  void arm_ns(timer_ns deadline, std::optional<timer_ns> period, timer_queue* q = nullptr) noexcept;
  timer_ns deadline_ns() const noexcept { return _deadline; }

 private:
  friend class timer_queue;
  enum class state : std::uint8_t { idle, armed, expiring };

  noncopyable_function<void()> _callback;
  timer_ns _deadline = 0;
  timer_ns _period = 0;  // 0: fires once
  timer_queue* _queue = nullptr;
  std::size_t _index = 0;  // in the heap (armed) or the expiring list
  state _state = state::idle;
};

/// The timers of one reactor: an indexed binary min-heap on deadlines.
class timer_queue {
 public:
  timer_queue() = default;
  timer_queue(const timer_queue&) = delete;
  timer_queue& operator=(const timer_queue&) = delete;
  ~timer_queue();

  void add(timer_base* t) noexcept;
  void remove(timer_base* t) noexcept;

  /// The earliest deadline, if any timer is armed.
  std::optional<timer_ns> next_deadline() const noexcept {
    if (_heap.empty()) return std::nullopt;
    return _heap.front()->_deadline;
  }

  std::size_t size() const noexcept { return _heap.size(); }

  /// Fires every timer whose deadline is at or before `now`, in deadline
  /// order; a periodic timer is re-armed first. A timer armed by a callback
  /// for a time at or before `now` fires on the next call, not this one.
  /// Returns how many fired.
  std::size_t expire(timer_ns now) noexcept;

 private:
  void sift_up(std::size_t i) noexcept;
  void sift_down(std::size_t i) noexcept;
  void place(std::size_t i, timer_base* t) noexcept {
    _heap[i] = t;
    t->_index = i;
  }

  friend class timer_base;

  std::vector<timer_base*> _heap;
  std::vector<timer_base*> _expiring;
};

/// The timer queue of this thread's reactor, or nullptr.
inline thread_local timer_queue* current_timer_queue = nullptr;

template <typename Clock>
timer_queue* timer_queue_for() noexcept {
  return current_timer_queue;
}

}  // namespace core_internal

class manual_clock;

namespace core_internal {
template <>
timer_queue* timer_queue_for<manual_clock>() noexcept;
}  // namespace core_internal

/// Calls a function at a time, once or every period, on this reactor.
/// The callback runs on the reactor thread and is destroyed with the timer.
template <typename Clock = steady_clock_type>
class timer : public core_internal::timer_base {
 public:
  using clock = Clock;
  using time_point = typename Clock::time_point;
  using duration = typename Clock::duration;

  timer() noexcept = default;
  explicit timer(noncopyable_function<void()> callback) noexcept
      : core_internal::timer_base(std::move(callback)) {}

  /// Fires at `until`, then every `period` if given (> 0).
  /// REQUIRES: not armed; a running reactor on this thread.
  void arm(time_point until, std::optional<duration> period = std::nullopt) noexcept {
    REEF_ASSERT(!armed(), "arming an armed timer (use rearm)");
    arm_ns(core_internal::to_timer_ns(until), to_ns(period), core_internal::timer_queue_for<Clock>());
  }
  /// Fires `delta` from now.
  void arm(duration delta) noexcept { arm(Clock::now() + delta); }
  /// Fires every `delta`, the first time `delta` from now.
  void arm_periodic(duration delta) noexcept { arm(Clock::now() + delta, delta); }
  /// Cancels, then arms.
  void rearm(time_point until, std::optional<duration> period = std::nullopt) noexcept {
    cancel();
    arm(until, period);
  }
  /// When it fires next. REQUIRES: armed().
  time_point get_timeout() const noexcept {
    return time_point(std::chrono::duration_cast<duration>(std::chrono::nanoseconds(deadline_ns())));
  }

 private:
  static std::optional<core_internal::timer_ns> to_ns(std::optional<duration> d) noexcept {
    if (!d) return std::nullopt;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*d).count();
    REEF_ASSERT(ns > 0, "a periodic timer needs a period > 0");
    return ns;
  }
};

}  // namespace reef
