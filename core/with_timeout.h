// Bounding how long a future may take.
// Reactor thread only; needs a running reactor.
#pragma once

#include <chrono>
#include <stdexcept>

#include "core/future.h"
#include "core/timer.h"

namespace reef {

/// What with_timeout() fails with when the time is up.
class timed_out_error : public std::runtime_error {
 public:
  timed_out_error() : std::runtime_error("timed out") {}
};

/// Resolves like `f`, or fails with timed_out_error at `deadline` if `f` has
/// not resolved by then. `f`'s work goes on; its late result is dropped.
template <typename Clock, typename Duration, typename T>
future<T> with_timeout(std::chrono::time_point<Clock, Duration> deadline, future<T> f) {
  if (f.available()) return f;
  struct state {
    promise<T> result;
    timer<Clock> tmr;
  };
  auto* st = new state;
  future<T> out = st->result.get_future();
  st->tmr.set_callback([st] { st->result.set_exception(timed_out_error()); });
  st->tmr.arm(deadline);
  (void)f.then_wrapped([st](future<T>&& done) {
    if (st->tmr.cancel()) {
      done.forward_to(std::move(st->result));
    } else {
      done.ignore_ready_future();  // too late: the caller has its timeout
    }
    delete st;
  });
  return out;
}

}  // namespace reef
