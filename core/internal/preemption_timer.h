// The reactor's preemption clock: a POSIX timer per reactor that, while the
// reactor runs tasks, delivers a signal to the reactor's own thread every
// task quota; the handler sets the thread's preempt_requested flag
// (core/task.h), so need_preempt() stays one load.
//
// Why a signal and not a companion thread: a thread on the shard's CPU
// would cost the reactor two context switches every quota (a busy shard
// loses its CPU to it), and one elsewhere competes with another shard. A
// signal is delivered on the reactor's thread by the kernel on its way
// back to user space: no context switch at all.
//
// Cost while idle: nothing. The reactor blocks the signal while it waits in
// the kernel (the wait's own signal mask, so no extra system call), and
// after `park_after` without a task batch it stops the timer (one
// timer_settime); the first batch after that starts it again (one more).
// When the thread leaves the reactor's loop (run() returns) the timer
// stops too: a thread blocked elsewhere is not woken every quota.
//
// Thread rules: created, armed, disarmed and destroyed on the reactor's
// thread; the handler runs on that thread.
#pragma once

#include <signal.h>
#include <time.h>

#include <atomic>
#include <chrono>

namespace reef::core_internal {

class preemption_timer {
 public:
  /// After this long without a task batch the reactor stops the timer.
  static constexpr std::chrono::milliseconds park_after{10};

  /// A timer for the calling thread that sets `*flag` every `quota` while
  /// armed. Throws std::system_error naming timer_create if the kernel
  /// refuses one.
  preemption_timer(std::chrono::nanoseconds quota, std::atomic<bool>* flag);
  ~preemption_timer();
  preemption_timer(const preemption_timer&) = delete;
  preemption_timer& operator=(const preemption_timer&) = delete;

  bool armed() const noexcept { return _armed; }
  /// Starts the periodic signal (one system call).
  void arm() noexcept;
  /// Stops it (one system call).
  void disarm() noexcept;

  /// The signal it uses (a real-time signal the reactor reserves).
  static int signal_number() noexcept;
  /// This thread's signal mask with the preemption signal added: what the
  /// reactor waits in the kernel with.
  const sigset_t* mask_while_waiting() const noexcept { return &_wait_mask; }
  /// Takes the thread's signal mask again (after the reactor changed it,
  /// handle_signal() letting a signal in): a wait must not block more, or
  /// less, than the thread does.
  void refresh_mask() noexcept;

  /// Signals delivered so far (for tests).
  std::uint64_t ticks() const noexcept { return _ticks.load(std::memory_order_relaxed); }

 private:
  static void on_signal(int, siginfo_t* info, void*) noexcept;

  struct target {
    std::atomic<bool>* flag;
    std::atomic<std::uint64_t>* ticks;
  };

  const std::chrono::nanoseconds _quota;
  target _target;
  std::atomic<std::uint64_t> _ticks{0};
  timer_t _timer{};
  sigset_t _wait_mask{};
  bool _armed = false;
};

}  // namespace reef::core_internal
