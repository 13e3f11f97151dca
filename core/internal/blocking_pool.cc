#include "core/internal/blocking_pool.h"

#include "core/internal/helper_threads.h"

#include <pthread.h>
#include <signal.h>

#include <exception>
#include <utility>

namespace reef::core_internal {

blocking_pool::blocking_pool(std::size_t threads_max, noncopyable_function<void()> wake_reactor)
    : _threads_max(threads_max == 0 ? 1 : threads_max), _wake_reactor(std::move(wake_reactor)) {}

blocking_pool::~blocking_pool() {
  {
    std::lock_guard lock(_mutex);
    _stopping = true;
  }
  _work_ready.notify_all();
  for (auto& t : _threads) t.join();
  drain_completions();
}

void blocking_pool::submit(blocking_work* w) {
  // Start a thread first if none is idle: if that fails with no thread at
  // all, nothing was queued and the caller keeps `w`.
  bool start_thread;
  {
    std::lock_guard lock(_mutex);
    start_thread = _idle == 0 && _threads.size() < _threads_max;
  }
  if (start_thread) {
    // Pool threads take no signals: those belong to the reactor.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    std::exception_ptr error;
    try {
      std::lock_guard lock(_mutex);
      _threads.emplace_back([this] { worker(); });
      ++_idle;
    } catch (...) {
      error = std::current_exception();
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (error) {
      std::lock_guard lock(_mutex);
      // With a thread already, one of them will get to it; with none,
      // nobody could run it.
      if (_threads.empty()) std::rethrow_exception(error);
    }
  }
  {
    std::lock_guard lock(_mutex);
    _queue.push_back(w);
  }
  ++_outstanding;
  _work_ready.notify_one();
}

void blocking_pool::worker() noexcept {
  use_process_cpus();  // not the shard's CPU: see core/internal/helper_threads.h
  std::unique_lock lock(_mutex);
  for (;;) {
    _work_ready.wait(lock, [this] { return _stopping || !_queue.empty(); });
    if (_queue.empty()) return;  // stopping, and nothing left to do
    blocking_work* w = _queue.front();
    _queue.pop_front();
    --_idle;
    lock.unlock();
    w->run();
    lock.lock();
    ++_idle;
    _completed.push_back(w);
    _completed_count.store(_completed.size());
    lock.unlock();
    _wake_reactor();
    lock.lock();
  }
}

std::size_t blocking_pool::drain_completions() noexcept {
  if (_completed_count.load(std::memory_order_relaxed) == 0) return 0;
  std::vector<blocking_work*> done;
  {
    std::lock_guard lock(_mutex);
    done.swap(_completed);
    _completed_count.store(0);
  }
  for (blocking_work* w : done) {
    --_outstanding;
    w->complete();
  }
  return done.size();
}

std::size_t blocking_pool::threads() const noexcept {
  std::lock_guard lock(_mutex);
  return _threads.size();
}

}  // namespace reef::core_internal
