// The reactor's stall detector: a companion thread that reports a loop
// iteration that runs too long.
//
// The reactor counts its loop iterations. This thread looks every
// `check_interval()` (a quarter of the threshold): if the count has not
// moved for longer than the stall threshold while the reactor thread was
// actually on a CPU for that long (so a thread that was merely descheduled
// on a busy machine is not blamed), it signals the reactor thread, whose
// handler captures a backtrace, and logs one line with it. Once per stall.
//
// It runs on the process's CPUs, not the shard's (core/internal/
// helper_threads.h), and rarely: a few times per threshold while the
// reactor is busy. After `park_after_checks` looks with the reactor asleep
// it parks on a futex and costs nothing; the reactor wakes it when it is
// busy again. (Preemption is not its job: core/internal/preemption_timer.h.)
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

namespace reef::core_internal {

class stall_detector {
 public:
  /// Starts the companion thread for the calling (reactor) thread.
  stall_detector(std::chrono::nanoseconds stall_threshold, int shard_id);
  ~stall_detector();
  stall_detector(const stall_detector&) = delete;
  stall_detector& operator=(const stall_detector&) = delete;

  /// How often the companion looks while the reactor is busy.
  std::chrono::nanoseconds check_interval() const noexcept;

  /// The reactor starts a loop iteration.
  void on_iteration() noexcept {
    _iterations.store(_iterations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  /// The reactor is awake (an iteration starts).
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
  // Looks with the reactor asleep before this thread parks.
  static constexpr unsigned park_after_checks = 2;

  static void on_backtrace_signal(int) noexcept;
  void run() noexcept;
  void check_stall() noexcept;
  void report_stall(std::chrono::nanoseconds stalled) noexcept;
  std::chrono::nanoseconds reactor_cpu_time() const noexcept;

  const std::chrono::nanoseconds _stall_threshold;
  const int _shard_id;
  const pthread_t _reactor_thread;
  clockid_t _reactor_cpu_clock{};

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

}  // namespace reef::core_internal
