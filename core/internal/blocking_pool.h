// The reactor's threads for blocking calls (run_blocking, and file
// operations on the epoll backend): a few OS threads that run work the
// reactor must not wait for, and hand the results back to the reactor.
//
// Thread rules: submit() and drain_completions() are called on the reactor
// thread; work::run() runs on a pool thread; work::complete() runs on the
// reactor thread (from drain_completions()). has_completions() may be called
// from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function.h"
#include "core/reactor.h"  // blocking_work

namespace reef::core_internal {


class blocking_pool {
 public:
  /// `wake_reactor` is called (from a pool thread) after a completion is
  /// queued; it must wake the reactor if it sleeps.
  blocking_pool(std::size_t threads_max, noncopyable_function<void()> wake_reactor);
  /// Finishes the queued work, then joins the threads. Completions not yet
  /// drained are completed here.
  ~blocking_pool();
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Queues `w`; starts another thread if all are busy and there is room.
  /// Throws (std::system_error, std::bad_alloc) with `w` not queued, still
  /// the caller's, if it cannot be run.
  void submit(blocking_work* w);

  /// Whether completions wait to be drained. Sequentially consistent, so the
  /// reactor can check it after announcing that it goes to sleep.
  bool has_completions() const noexcept { return _completed_count.load() != 0; }

  /// Calls complete() on the finished work; returns how many.
  std::size_t drain_completions() noexcept;

  /// Work submitted and not yet completed.
  std::size_t outstanding() const noexcept { return _outstanding; }

  std::size_t threads() const noexcept;

 private:
  void worker() noexcept;

  const std::size_t _threads_max;
  noncopyable_function<void()> _wake_reactor;
  mutable std::mutex _mutex;
  std::condition_variable _work_ready;
  std::deque<blocking_work*> _queue;
  std::vector<blocking_work*> _completed;
  std::atomic<std::size_t> _completed_count{0};
  std::vector<std::thread> _threads;
  std::size_t _idle = 0;
  bool _stopping = false;
  std::size_t _outstanding = 0;  // reactor thread only
};

}  // namespace reef::core_internal
