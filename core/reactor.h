// The reactor: one event loop per thread that runs tasks, timers, I/O
// completions and pollers.
//
// The loop, one iteration:
//   1. read the clock (lowres_clock) and fire the timers that are due;
//   2. reap I/O completions and run the pollers (signals, blocking-call
//      completions, user pollers such as smp queues);
//   3. run queued tasks in FIFO order until the queue is empty or the task
//      quota is used up (need_preempt(), set by a timer signal on this
//      thread: core/internal/preemption_timer.h);
//   4. hand the I/O submissions queued meanwhile to the kernel in one batch;
//   5. if nothing was done, sleep in the kernel until an I/O completion, the
//      next timer, a signal or a wakeup() from another thread.
// An idle reactor therefore uses no CPU; a busy one makes one system call per
// iteration for its I/O, not one per operation.
//
// Ownership and threads: a reactor is created, run and destroyed on one
// thread and is that thread's scheduler (engine()). Everything it owns
// (tasks, timers, I/O, pollers, signal handlers) is used on that thread only,
// except wakeup() and request_stop(), which any thread may call.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "core/io_backend.h"
#include "core/metrics.h"
#include "core/scheduling_group.h"
#include "core/task.h"
#include "core/timer.h"

namespace reef {

namespace core_internal {
class blocking_pool;
class preemption_timer;
class stall_detector;
class run_queues;

/// A unit of blocking work (run_blocking, the epoll backend's file I/O):
/// owned by the reactor's pool from submission until complete(), which
/// disposes of it.
class blocking_work {
 public:
  virtual ~blocking_work() = default;
  /// The blocking part, on a pool thread.
  virtual void run() noexcept = 0;
  /// Delivers the result, on the reactor thread; disposes of the work.
  virtual void complete() noexcept = 0;
};
}  // namespace core_internal

/// Which I/O backend a reactor uses.
enum class reactor_backend : std::uint8_t { io_uring, epoll };

/// "io_uring" or "epoll".
const char* to_string(reactor_backend backend) noexcept;

/// How a reactor behaves. Every limit is named here.
struct reactor_options {
  /// The I/O backend. io_uring falls back to epoll, with a logged reason,
  /// when the kernel refuses a ring.
  reactor_backend backend = reactor_backend::io_uring;
  /// How long a batch of tasks runs before need_preempt() turns true.
  std::chrono::microseconds task_quota{500};
  /// A loop iteration that takes longer than this (in CPU time) is reported
  /// as a stall with a backtrace. Seastar's default is 25 ms; Reef's is
  /// higher because shared CI machines deschedule threads for that long.
  std::chrono::milliseconds stall_threshold{200};
  /// Threads that run blocking calls (run_blocking, epoll file I/O).
  std::size_t blocking_threads_max = 2;
  /// Whether run() installs handlers that stop the reactor on SIGINT and
  /// SIGTERM (unless the application handles them with handle_signal()).
  bool stop_on_sigint_sigterm = true;
  /// The shard id printed in log lines from this thread (-1: none).
  int shard_id = 0;
  /// Never sleep: poll for work continuously (lowest latency, one core
  /// fully used even when idle). Seastar's --poll-mode.
  bool poll_mode = false;
  /// Poll this long after the last work before sleeping (Seastar's
  /// --idle-poll-time-us). A sleeping CPU is slow to wake, on a virtual
  /// machine tens of microseconds, which a disk at a fixed queue depth and
  /// a client waiting for its reply both feel; 0: sleep at once.
  std::chrono::microseconds idle_poll_time{200};
};

/// Work the reactor checks for between task batches. Owned by whoever
/// registers it; unregister before destroying it.
class poller {
 public:
  virtual ~poller() = default;
  /// Does the work that is there; returns whether there was any.
  virtual bool poll() noexcept = 0;
  /// Whether poll() would find work. Called after the reactor announced
  /// that it goes to sleep, so work signalled by another thread afterwards
  /// comes with a wakeup(): nothing is lost.
  virtual bool has_work() noexcept = 0;
};

/// The signals every reactor takes for itself when it starts: its stall
/// detector's and its preemption timer's (real-time signals). A library
/// that picks a free signal before any reactor exists (DPDK's net_tap
/// takes the first real-time signal without a handler) must not pick
/// these, or the reactor's handler replaces its own.
std::array<int, 2> reactor_signals() noexcept;

/// Counters of one reactor, for tests, benchmarks and metrics.
struct reactor_stats {
  std::uint64_t tasks_run = 0;
  std::uint64_t iterations = 0;
  std::uint64_t sleeps = 0;
  std::uint64_t timers_fired = 0;
  std::uint64_t signals_delivered = 0;
  std::uint64_t stalls_reported = 0;
  /// Preemption signals delivered to this reactor's thread.
  std::uint64_t preemption_ticks = 0;
  /// Time spent asleep in the kernel, waiting for work.
  std::uint64_t sleep_ns = 0;
};

class reactor final : public scheduler {
 public:
  /// Creates the reactor of the calling thread. Throws std::system_error if
  /// no I/O backend can be set up, std::logic_error if the thread has one.
  explicit reactor(reactor_options options = {});
  /// Cancels the I/O in flight, runs the tasks that are left, waits for the
  /// blocking calls, restores the signal handlers it installed.
  ~reactor() override;
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  /// Runs the loop until stop() or exit(); returns the exit code.
  int run();

  /// Runs `main()` (returning future<int>, future<> or a coroutine) as the
  /// first task, then the loop until main's future resolves or stop() is
  /// called. Returns main's value (0 for future<>), or 1 after logging if it
  /// failed. `main` is moved to the heap and destroyed when its future
  /// resolves.
  template <typename F>
  int run(F&& main);

  /// Runs loop iterations until `done()` is true (checked after each).
  /// For test harnesses and benchmarks.
  void run_until(const noncopyable_function<bool()>& done);

  /// Runs loop iterations without sleeping until no task is queued.
  void run_pending_tasks();

  /// Runs one loop iteration without sleeping. For benchmarks: the
  /// preemption timer stays armed between calls (run(), run_until() and
  /// run_pending_tasks() stop it when they return).
  void run_once() { run_one_iteration(false); }

  /// Makes run() return after the current iteration, with `exit_code`.
  void exit(int exit_code) noexcept;
  void stop() noexcept { exit(0); }

  /// Like stop(), from any thread.
  /// REQUIRES: the reactor outlives the call.
  void request_stop() noexcept;

  /// Wakes the reactor if it sleeps. Any thread (on the reactor's own,
  /// nothing to do), but not a signal handler: see wakeup_from_signal().
  /// REQUIRES: the reactor outlives the call.
  void wakeup() noexcept;

  /// wakeup() for a signal handler, which may run on the reactor's thread
  /// just before it sleeps. Async-signal-safe.
  void wakeup_from_signal() noexcept;

  // scheduler
  void schedule(task* t) noexcept override;

  /// The I/O backend.
  io_backend& io() noexcept { return *_io; }

  const reactor_options& options() const noexcept { return _options; }
  reactor_stats stats() const noexcept;
  std::size_t tasks_queued() const noexcept;

  /// What this reactor counted for one scheduling group.
  struct scheduling_group_stats {
    std::chrono::nanoseconds runtime{0};  // running the group's tasks
    std::chrono::nanoseconds wait_time{0};  // with tasks queued, not running
    std::uint64_t tasks_run = 0;
    std::size_t tasks_queued = 0;
  };
  scheduling_group_stats stats(scheduling_group sg) const noexcept;

  /// Registers a poller (see `poller`). REQUIRES: not already registered.
  void add_poller(poller* p);
  void remove_poller(poller* p) noexcept;

  /// Runs `handler` as a task on this reactor whenever `signo` arrives,
  /// replacing the default (for SIGINT/SIGTERM: stop). One reactor in the
  /// process handles signals; the handler is destroyed with the reactor.
  /// Throws std::invalid_argument for a signal that cannot be handled.
  void handle_signal(int signo, noncopyable_function<void()> handler);

  /// Runs `f()` first thing when the reactor is destroyed, while engine()
  /// and the I/O backend still work (the last registered runs first). For
  /// per-shard services kept in thread_locals: they release their sockets
  /// and timers here rather than after the reactor is gone.
  void at_destroy(noncopyable_function<void()> f);

  /// Runs `f()` on one of the reactor's blocking-call threads and returns
  /// its result (or exception) as a future on this reactor; the loop never
  /// waits for it. `f` is moved to the pool, called on a pool thread, and
  /// destroyed on this reactor's thread.
  template <typename F>
  futurize_t<std::invoke_result_t<F>> run_blocking(F&& f) noexcept;

 private:
  class signal_poller;
  class blocking_poller;

  // Hands `w` to the blocking pool. Throws (w not taken) if it cannot.
  void submit_blocking(core_internal::blocking_work* w);

  bool run_one_iteration(bool may_sleep);
  void enter_loop() noexcept;
  bool run_tasks() noexcept;
  bool poll_once() noexcept;
  void sleep() noexcept;
  void install_default_signal_handlers();
  void run_signal_handlers(std::uint64_t pending) noexcept;
  void on_main_failed(std::exception_ptr ex) noexcept;

  reactor_options _options;
  std::unique_ptr<core_internal::run_queues> _tasks;
  core_internal::timer_queue _timers;
  std::unique_ptr<core_internal::blocking_pool> _blocking;
  std::unique_ptr<io_backend> _io;
  std::unique_ptr<core_internal::stall_detector> _stall_detector;
  std::unique_ptr<core_internal::preemption_timer> _preemption;
  lowres_clock::time_point _last_batch_time{};  // when the last task batch started
  std::vector<poller*> _pollers;
  std::unique_ptr<signal_poller> _signal_poller;
  std::unique_ptr<blocking_poller> _blocking_poller;
  struct signal_slot;
  std::vector<std::unique_ptr<signal_slot>> _signals;
  std::vector<noncopyable_function<void()>> _at_destroy;
  std::atomic<bool> _sleeping{false};
  std::atomic<bool> _stop_requested{false};
  bool _stopping = false;
  bool _last_iteration_did_work = true;
  lowres_clock::time_point _last_work_time{};  // with idle_poll_time only
  std::int64_t _last_wake_ns = 0;  // steady clock: when the last sleep ended
  bool _clock_set_by_tasks = false;  // the last task batch's end set lowres_clock
  std::uint32_t _idle_iterations = 0;
  int _exit_code = 0;
  reactor_stats _stats;
  scheduler* _previous_scheduler = nullptr;
  // For the metrics: when the reactor was made.
  std::chrono::steady_clock::time_point _created = std::chrono::steady_clock::now();
  // The scheduling groups as this reactor last saw them (see
  // sync_scheduling_groups()): the registry's generation, and by id the
  // incarnation of the group (0: none).
  std::uint64_t _groups_generation_seen = ~std::uint64_t{0};
  std::array<std::uint32_t, scheduling_group::groups_max> _group_incarnation_seen{};
  // Last: removed before anything they read.
  std::array<metrics::metric_groups, scheduling_group::groups_max> _group_metrics;
  metrics::metric_groups _metrics;

  void register_metrics();
  // Resets the counts of groups new in their id and registers every live
  // group's metrics: at the first loop iteration after a change, and at
  // once on the thread that made the change.
  void sync_scheduling_groups() noexcept;
  static void scheduling_groups_changed_here() noexcept;
  // Whether this thread's reactor neither runs group `id` now nor has
  // tasks of it queued (destroy_scheduling_group() asks).
  static bool scheduling_group_idle_here(unsigned id) noexcept;
};

namespace core_internal {
inline thread_local reactor* this_thread_reactor = nullptr;

// A blocking call and the promise of its result.
template <typename F, typename R>
class blocking_call final : public blocking_work {
 public:
  explicit blocking_call(F&& f) : _f(std::move(f)) {}
  future<R> get_future() noexcept { return _result.get_future(); }

  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        _f();
        _value.emplace();
      } else {
        _value.emplace(_f());
      }
    } catch (...) {
      _exception = std::current_exception();
    }
  }

  void complete() noexcept override {
    if (_exception) {
      _result.set_exception(std::move(_exception));
    } else if constexpr (std::is_void_v<R>) {
      _result.set_value();
    } else {
      _result.set_value(std::move(*_value));
    }
    delete this;
  }

 private:
  F _f;
  promise<R> _result;
  std::optional<stored_t<R>> _value;
  std::exception_ptr _exception;
};
}  // namespace core_internal

/// The reactor of the calling thread.
/// REQUIRES: the thread has one.
inline reactor& engine() noexcept {
  reactor* r = core_internal::this_thread_reactor;
  REEF_ASSERT(r != nullptr, "no reactor on this thread");
  return *r;
}

/// Whether the calling thread has a reactor.
inline bool engine_is_ready() noexcept { return core_internal::this_thread_reactor != nullptr; }

/// engine().run_blocking(f).
template <typename F>
futurize_t<std::invoke_result_t<F>> run_blocking(F&& f) noexcept {
  return engine().run_blocking(std::forward<F>(f));
}

template <typename F>
futurize_t<std::invoke_result_t<F>> reactor::run_blocking(F&& f) noexcept {
  using R = std::invoke_result_t<F>;
  static_assert(!is_future_v<R>, "run_blocking runs a blocking function, not an asynchronous one");
  using call = core_internal::blocking_call<std::decay_t<F>, R>;
  try {
    auto* c = new call(std::forward<F>(f));
    future<R> result = c->get_future();
    try {
      submit_blocking(c);
    } catch (...) {
      delete c;
      throw;
    }
    return result;
  } catch (...) {
    return make_exception_future<R>(std::current_exception());
  }
}

template <typename F>
int reactor::run(F&& main) {
  // On the heap and kept until main's future resolves: a coroutine lambda's
  // frame refers to the lambda object.
  auto held = std::make_unique<std::decay_t<F>>(std::forward<F>(main));
  schedule(make_task([this, held = std::move(held)]() mutable {
    auto f = futurize_invoke(*held);
    using value = typename decltype(f)::value_type;
    static_assert(std::is_void_v<value> || std::is_convertible_v<value, int>,
                  "main must return future<int> or future<>");
    (void)f.then_wrapped([this, held = std::move(held)](auto&& done) {
      // `done` is ready here; a continuation might not be (preemption).
      if (done.failed()) {
        on_main_failed(done.get_exception());
      } else if constexpr (std::is_void_v<value>) {
        done.get();
        exit(0);
      } else {
        exit(static_cast<int>(done.get()));
      }
    });
  }));
  return run();
}

}  // namespace reef
