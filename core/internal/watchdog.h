// The reactor's companion thread: it requests preemption when a task batch
// has used its quota, and reports stalls.
//
// Preemption: while the reactor runs tasks ("busy"), this thread sleeps one
// task quota at a time and, after each, sets the reactor thread's
// preempt_requested flag (core/task.h); the reactor clears the flag when it
// starts a batch. need_preempt() is therefore one load, and the reactor makes
// no system call for it. When the reactor has slept through
// `park_after_ticks` quotas in a row, this thread parks on a futex and costs
// nothing; the reactor wakes it when it is busy again. A reactor that sleeps
// often and briefly (a server under load) so never pays for the wake-up (a
// futex call and two context switches each time).
//
// Stalls: the reactor counts its loop iterations. If the count does not move
// for longer than the stall threshold while the reactor thread was actually
// on a CPU for that long (so a thread that was merely descheduled on a busy
// machine is not blamed), this thread signals the reactor thread, whose
// handler captures a backtrace, and logs one line with it. Once per stall.
//
// Thread rules: on_busy(), on_idle() and on_iteration() are called by the
// reactor thread; everything else happens on the companion thread.
#pragma once

#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>

namespace reef::internal {

class watchdog {
 public:
  /// Starts the companion thread for the calling (reactor) thread.
  watchdog(std::chrono::nanoseconds task_quota, std::chrono::nanoseconds stall_threshold,
           int shard_id);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// The reactor starts a loop iteration.
  void on_iteration() noexcept {
    _iterations.store(_iterations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  /// The reactor starts a task batch.
  void on_busy() noexcept {
    if (_state.load(std::memory_order_relaxed) != busy) {
      // Pairs with run(): it announces _parked, then looks at _state.
      _state.store(busy, std::memory_order_seq_cst);
      if (_parked.load(std::memory_order_seq_cst)) _state.notify_one();
    }
  }

  /// The reactor is about to sleep.
  void on_idle() noexcept { _state.store(idle, std::memory_order_relaxed); }

  /// Stalls reported so far.
  std::size_t stalls_reported() const noexcept {
    return _stalls_reported.load(std::memory_order_relaxed);
  }

  /// The signal used to take a stalled reactor's backtrace.
  static int backtrace_signal() noexcept;

 private:
  static constexpr std::uint32_t idle = 0;
  static constexpr std::uint32_t busy = 1;
  static constexpr std::uint32_t stopping = 2;
  static constexpr int frames_max = 48;
  // Quotas the reactor must sleep through before this thread parks.
  static constexpr unsigned park_after_ticks = 20;

  static void on_backtrace_signal(int) noexcept;
  void run() noexcept;
  void check_stall() noexcept;
  void report_stall(std::chrono::nanoseconds stalled) noexcept;
  std::chrono::nanoseconds reactor_cpu_time() const noexcept;

  const std::chrono::nanoseconds _quota;
  const std::chrono::nanoseconds _stall_threshold;
  const int _shard_id;
  const pthread_t _reactor_thread;
  clockid_t _reactor_cpu_clock{};
  std::atomic<bool>* const _preempt;

  std::atomic<std::uint32_t> _state{idle};
  std::atomic<bool> _parked{false};  // this thread waits on _state
  std::atomic<std::uint64_t> _iterations{0};
  std::atomic<std::size_t> _stalls_reported{0};

  // Written by the signal handler on the reactor thread, read here.
  void* _frames[frames_max]{};
  std::atomic<int> _frame_count{-1};

  // Companion thread only.
  std::uint64_t _seen_iterations = 0;
  std::chrono::steady_clock::time_point _seen_since{};
  std::chrono::nanoseconds _seen_cpu{};
  bool _reported = false;

  std::thread _thread;
};

}  // namespace reef::internal
