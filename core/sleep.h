// Futures that resolve after a while, and yielding.
// Reactor thread only; they need a running reactor.
#pragma once

#include <chrono>
#include <optional>

#include "core/abort_source.h"
#include "core/future.h"
#include "core/task.h"
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

/// Like sleep(), but fails with abort_requested_exception as soon as `as`
/// is aborted (at once if it already is). `as` must outlive the sleep.
template <typename Clock = steady_clock_type, typename Rep, typename Period>
future<> sleep_abortable(std::chrono::duration<Rep, Period> duration, abort_source& as) {
  if (as.abort_requested()) return make_exception_future<>(abort_requested_exception());
  struct sleeper {
    promise<> done;
    timer<Clock> tmr;
    std::optional<abort_source::subscription> subscription;
  };
  auto* s = new sleeper;
  s->subscription = as.subscribe([s] {
    s->tmr.cancel();
    s->done.set_exception(abort_requested_exception());
    delete s;
  });
  s->tmr.set_callback([s] {
    s->done.set_value();
    delete s;
  });
  s->tmr.arm(std::chrono::duration_cast<typename Clock::duration>(duration));
  return s->done.get_future();
}

/// Resolves once the tasks queued now have had their turn: lets others run
/// in a long computation. One allocation (a task).
inline future<> yield() {
  struct yield_task final : task {
    promise<> done;
    void run_and_dispose() noexcept override {
      done.set_value();
      delete this;
    }
  };
  auto* t = new yield_task;
  future<> f = t->done.get_future();
  schedule(t);
  return f;
}

}  // namespace reef
