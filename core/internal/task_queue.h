// The reactor's run queue: a growable ring buffer of task pointers (FIFO).
// Limit: none of its own; it holds every runnable task, so it grows (by
// doubling) with them and is bounded by memory like the tasks themselves.
// If it cannot grow, reactor::schedule() runs the task at once instead.
// Reactor thread only.
#pragma once

#include <cstddef>
#include <memory>

#include "core/assert.h"
#include "core/task.h"

namespace reef::internal {

class task_queue {
 public:
  task_queue() : _slots(std::make_unique<task*[]>(initial_capacity)), _mask(initial_capacity - 1) {}

  bool empty() const noexcept { return _head == _tail; }
  std::size_t size() const noexcept { return _tail - _head; }

  void push_back(task* t) {
    if (size() == _mask + 1) grow();
    _slots[_tail++ & _mask] = t;
  }

  /// REQUIRES: !empty().
  task* pop_front() noexcept {
    REEF_DEBUG_ASSERT(!empty());
    return _slots[_head++ & _mask];
  }

 private:
  static constexpr std::size_t initial_capacity = 1024;

  void grow() {
    std::size_t capacity = (_mask + 1) * 2;
    auto bigger = std::make_unique<task*[]>(capacity);
    std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) bigger[i] = _slots[(_head + i) & _mask];
    _slots = std::move(bigger);
    _mask = capacity - 1;
    _head = 0;
    _tail = n;
  }

  std::unique_ptr<task*[]> _slots;
  std::size_t _mask;
  std::size_t _head = 0;
  std::size_t _tail = 0;
};

}  // namespace reef::internal
