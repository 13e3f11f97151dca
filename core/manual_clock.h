// A clock for tests that moves only when told: timers and sleeps on it fire
// when the test advances it, not when real time passes.
//
//   auto done = sleep<manual_clock>(10s);   // would take 10 s on a real clock
//   manual_clock::advance(10s);             // fires it now
//   co_await std::move(done);
//
// timer<manual_clock>, sleep<manual_clock>() and with_timeout() with a
// manual_clock deadline all work. Time starts at 0 on each thread.
//
// Thread rules: per thread: advance() moves the calling thread's manual
// time and fires that thread's manual_clock timers (their callbacks run
// inside advance(); what they schedule runs on the thread's reactor).
#pragma once

#include <chrono>
#include <cstdint>

#include "core/timer.h"

namespace reef {

class manual_clock {
 public:
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::duration<rep, period>;
  using time_point = std::chrono::time_point<manual_clock, duration>;
  static constexpr bool is_steady = true;

  /// This thread's manual time.
  static time_point now() noexcept;

  /// Moves this thread's manual time forward by `d` (>= 0) and fires the
  /// manual_clock timers now due, in deadline order.
  static void advance(duration d) noexcept;
};

}  // namespace reef
