// The small interface between futures and whatever runs them.
//
// A `task` is a unit of work the scheduler of the current thread runs later.
// Futures (core/future.h) create tasks for continuations and hand them to
// `schedule()`; the reactor (core/reactor.h) implements the scheduler and the
// preemption flag. Keeping this interface apart lets //core:future be used
// and tested without the reactor (see core/testing/manual_scheduler.h).
//
// Thread rules: everything here is per thread. A task is scheduled, run and
// destroyed on the thread whose scheduler it was given to.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "core/sanitizers.h"

namespace reef {

namespace core_internal {

class task_queue;

#if !defined(REEF_ASAN) && !defined(REEF_TSAN)
#define REEF_TASK_MEMORY_CACHE 1
#endif

/// Freed task memory of this thread (continuations, coroutine frames,
/// yields), by 64-byte size class up to 1 KiB, kept for reuse: tasks are
/// allocated and freed in bursts (a batch of continuations, a
/// parallel_for_each), which a general-purpose malloc serves slowly once its
/// own small per-thread cache overflows. At most `per_class_max` blocks per
/// class are kept; the rest go back to operator delete, and what is kept is
/// released when the thread exits. Off under sanitizers, so that they see
/// every object's lifetime. Trivially destructible, so using it costs no
/// TLS guard.
struct task_memory_cache {
  static constexpr std::size_t granule = 64;
  static constexpr std::size_t classes = 16;
  static constexpr std::uint32_t per_class_max = 256;
  struct block {
    block* next;
  };
  block* free[classes];
  std::uint32_t count[classes];
  bool cleanup_registered;
  std::uint64_t allocations;  // requests served, cached or not (benchmarks report it)
};

inline thread_local task_memory_cache this_thread_task_memory{};

/// Registers the release of this thread's cache at thread exit.
void register_task_memory_cleanup() noexcept;

/// Scheduling groups a process may have, the default group included
/// (core/scheduling_group.h).
inline constexpr unsigned scheduling_groups_max = 16;

/// The scheduling group of the task this thread runs now (0, the default
/// group, outside tasks). A task made now joins it: that is how
/// continuations inherit their group. The reactor sets it.
inline thread_local std::uint8_t current_scheduling_group = 0;

inline void* allocate_task_memory(std::size_t size) {
  ++this_thread_task_memory.allocations;
#if REEF_TASK_MEMORY_CACHE
  std::size_t c = (size - 1) / task_memory_cache::granule;
  if (c < task_memory_cache::classes) {
    task_memory_cache& cache = this_thread_task_memory;
    if (task_memory_cache::block* b = cache.free[c]) {
      cache.free[c] = b->next;
      --cache.count[c];
      return b;
    }
    return ::operator new((c + 1) * task_memory_cache::granule);
  }
#endif
  return ::operator new(size);
}

inline void free_task_memory(void* p, [[maybe_unused]] std::size_t size) noexcept {
#if REEF_TASK_MEMORY_CACHE
  std::size_t c = (size - 1) / task_memory_cache::granule;
  if (c < task_memory_cache::classes) {
    task_memory_cache& cache = this_thread_task_memory;
    if (cache.count[c] < task_memory_cache::per_class_max) {
      if (!cache.cleanup_registered) register_task_memory_cleanup();
      auto* b = static_cast<task_memory_cache::block*>(p);
      b->next = cache.free[c];
      cache.free[c] = b;
      ++cache.count[c];
      return;
    }
    ::operator delete(p);
    return;
  }
#endif
  ::operator delete(p);
}

}  // namespace core_internal

/// A unit of work run once by the current thread's scheduler.
class task {
 public:
  /// A task of the current scheduling group.
  task() noexcept : _scheduling_group(core_internal::current_scheduling_group) {}
  task(const task&) = delete;
  task& operator=(const task&) = delete;

  /// Runs the task, then destroys or recycles it. Called exactly once, on
  /// the thread that scheduled it.
  virtual void run_and_dispose() noexcept = 0;

  // Tasks, and coroutine frames (whose promise is a task), come from the
  // per-thread task memory cache above.
  static void* operator new(std::size_t size) { return core_internal::allocate_task_memory(size); }
  static void operator delete(void* p, std::size_t size) noexcept {
    core_internal::free_task_memory(p, size);
  }

  /// The id of the scheduling group the task runs in.
  unsigned scheduling_group_id() const noexcept { return _scheduling_group; }

 protected:
  /// A task of scheduling group `group_id`.
  /// REQUIRES: group_id < core_internal::scheduling_groups_max.
  explicit task(unsigned group_id) noexcept : _scheduling_group(static_cast<std::uint8_t>(group_id)) {}

  // Tasks are disposed of by run_and_dispose(), never deleted through a base
  // pointer by their owner.
  ~task() = default;

 private:
  friend class core_internal::task_queue;
  // The next task in the reactor's run queue (core/internal/task_queue.h):
  // queuing allocates nothing.
  task* _next_in_queue = nullptr;
  std::uint8_t _scheduling_group;
};

/// What runs tasks on a thread. The reactor is one; tests use a manual one.
class scheduler {
 public:
  virtual ~scheduler() = default;
  /// Queues `t` to run after the tasks already queued.
  virtual void schedule(task* t) noexcept = 0;
};

namespace core_internal {

/// The scheduler of this thread, or nullptr.
inline thread_local scheduler* current_scheduler = nullptr;

/// Set (relaxed) by the reactor's preemption timer when the running task
/// batch has used its quota; cleared by the reactor when a batch starts.
/// A thread-local flag so that need_preempt() is one load.
inline thread_local std::atomic<bool> preempt_requested{false};

/// Aborts: a task was scheduled on a thread with no scheduler.
[[noreturn]] void no_scheduler() noexcept;

/// A stackful thread (core/thread.h) that can block in future::get().
class blocking_context {
 public:
  /// The task that resumes this thread when scheduled.
  virtual task* resume_task() noexcept = 0;
  /// Switches away until resume_task() has been scheduled and run.
  virtual void suspend() noexcept = 0;

 protected:
  ~blocking_context() = default;
};

/// The stackful thread running on this OS thread right now, or nullptr.
inline thread_local blocking_context* current_blocking_context = nullptr;

}  // namespace core_internal

namespace core_internal {

// A task that calls a function once.
template <typename F>
class lambda_task final : public task {
 public:
  explicit lambda_task(F&& f) : _f(std::move(f)) {}
  void run_and_dispose() noexcept override {
    _f();
    delete this;
  }

 private:
  F _f;
};

}  // namespace core_internal

/// A heap-allocated task that calls `f()` (noexcept in spirit: an escaping
/// exception terminates) when run, then deletes itself.
template <typename F>
task* make_task(F&& f) {
  return new core_internal::lambda_task<std::decay_t<F>>(std::forward<F>(f));
}

/// Makes `s` (or none, for nullptr) this thread's scheduler; returns the
/// previous one. The reactor does this for its thread; a program that uses
/// futures without a reactor installs a scheduler of its own.
inline scheduler* set_scheduler(scheduler* s) noexcept {
  scheduler* previous = core_internal::current_scheduler;
  core_internal::current_scheduler = s;
  return previous;
}

/// Queues `t` on this thread's scheduler.
/// REQUIRES: the thread has a scheduler (a running reactor or a test's).
inline void schedule(task* t) noexcept {
  scheduler* s = core_internal::current_scheduler;
  if (s == nullptr) core_internal::no_scheduler();
  s->schedule(t);
}

/// True when the running code should yield to the scheduler soon: the task
/// quota is used up. A single relaxed load, cheap enough for every step of a
/// loop.
inline bool need_preempt() noexcept {
  return core_internal::preempt_requested.load(std::memory_order_relaxed);
}

}  // namespace reef
