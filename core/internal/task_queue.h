// The reactor's run queue: a FIFO of tasks linked through the tasks
// themselves (task::_next_in_queue), so queuing a task never allocates and
// never fails: schedule() under memory pressure still queues, and no task
// ever runs inside schedule(). No limit of its own: every runnable task is
// in it, bounded by the memory the tasks themselves hold. A task is in at
// most one queue at a time. Reactor thread only.
#pragma once

#include <cstddef>

#include "core/assert.h"
#include "core/task.h"

namespace reef::core_internal {

class task_queue {
 public:
  task_queue() noexcept = default;
  task_queue(const task_queue&) = delete;
  task_queue& operator=(const task_queue&) = delete;

  bool empty() const noexcept { return _head == nullptr; }
  std::size_t size() const noexcept { return _size; }

  void push_back(task* t) noexcept {
    t->_next_in_queue = nullptr;
    if (_tail != nullptr) {
      _tail->_next_in_queue = t;
    } else {
      _head = t;
    }
    _tail = t;
    ++_size;
  }

  /// REQUIRES: !empty().
  task* pop_front() noexcept {
    REEF_DEBUG_ASSERT(!empty());
    task* t = _head;
    _head = t->_next_in_queue;
    if (_head == nullptr) _tail = nullptr;
    --_size;
    return t;
  }

 private:
  task* _head = nullptr;
  task* _tail = nullptr;
  std::size_t _size = 0;
};

}  // namespace reef::core_internal
