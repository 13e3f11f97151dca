#include "core/manual_clock.h"

#include "core/assert.h"

namespace reef {

namespace {
thread_local core_internal::timer_ns manual_now_ns = 0;
thread_local core_internal::timer_queue manual_timers;
}  // namespace

namespace core_internal {
template <>
timer_queue* timer_queue_for<manual_clock>() noexcept {
  return &manual_timers;
}
}  // namespace core_internal

manual_clock::time_point manual_clock::now() noexcept { return time_point(duration(manual_now_ns)); }

void manual_clock::advance(duration d) noexcept {
  REEF_ASSERT(d.count() >= 0, "manual_clock moves forward only");
  manual_now_ns += d.count();
  manual_timers.expire(manual_now_ns);
}

}  // namespace reef
