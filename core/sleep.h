// Futures that resolve after a while, and yielding.
// Reactor thread only; they need a running reactor.
#pragma once

#include <chrono>

#include "core/future.h"
#include "core/timer.h"

namespace reef {

/// Resolves after `duration` (on `Clock`, steady by default). The timer is
/// allocated here and freed when it fires.
template <typename Clock = steady_clock_type, typename Rep, typename Period>
future<> sleep(std::chrono::duration<Rep, Period> duration) {
  struct sleeper {
    promise<> done;
    timer<Clock> tmr;
    explicit sleeper(typename Clock::duration d) : tmr([this] {
      done.set_value();
      delete this;
    }) {
      tmr.arm(d);
    }
  };
  auto* s = new sleeper(std::chrono::duration_cast<typename Clock::duration>(duration));
  return s->done.get_future();
}

/// Resolves once the tasks queued now have had their turn: lets others run
/// in a long computation. One allocation (a task).
inline future<> yield() {
  promise<> p;
  future<> f = p.get_future();
  schedule(make_task([p = std::move(p)]() mutable { p.set_value(); }));
  return f;
}

}  // namespace reef
