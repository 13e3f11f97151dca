// The reactor's run queues: one per scheduling group (core/scheduling_group.h),
// each a FIFO of tasks linked through the tasks themselves (task::_next_in_queue), so queuing a task never allocates and
// never fails: schedule() under memory pressure still queues, and no task
// ever runs inside schedule(). No limit of its own: every runnable task is
// in it, bounded by the memory the tasks themselves hold. A task is in at
// most one queue at a time. Reactor thread only.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "core/assert.h"
#include "core/task.h"
#include "core/timer.h"

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

/// One scheduling group's queue and what the reactor counts for it.
struct group_run_queue {
  task_queue tasks;
  /// Nanoseconds run (wall-clock time in the group's task batches), each
  /// divided by the shares it was run under.
  double vruntime = 0;
  std::uint64_t runtime_ns = 0;
  /// Time with tasks queued but another group (or no task batch) running.
  /// From the reactor's low-resolution clock, so it may start up to one
  /// loop iteration early (never before the reactor's last wakeup).
  std::uint64_t wait_ns = 0;
  std::uint64_t tasks_run = 0;
  /// While queued: since when (steady clock nanoseconds).
  std::int64_t ready_since_ns = 0;
};

/// The reactor's queues, one per group, and which of them have tasks.
class run_queues {
 public:
  std::array<group_run_queue, scheduling_groups_max> groups;
  /// Bit g: groups[g] has tasks.
  std::uint32_t active = 0;
  static_assert(scheduling_groups_max <= 32, "one bit per group");
  /// The virtual runtime of the group picked last, as it was when picked:
  /// no group with tasks queued is below it. A group that gets tasks again
  /// starts no lower (it banked nothing while idle), and no higher than
  /// the groups it joins.
  double min_vruntime = 0;

  bool empty() const noexcept { return active == 0; }

  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& g : groups) n += g.tasks.size();
    return n;
  }

  void push_back(task* t) noexcept {
    const unsigned id = t->scheduling_group_id();
    group_run_queue& g = groups[id];
    g.tasks.push_back(t);
    if ((active & (1u << id)) == 0) {
      active |= 1u << id;
      g.vruntime = std::max(g.vruntime, min_vruntime);
      g.ready_since_ns = to_timer_ns(lowres_clock::now());
    }
  }

  /// The group with tasks and the least virtual runtime, which becomes
  /// min_vruntime. REQUIRES: !empty().
  unsigned pick() noexcept {
    REEF_DEBUG_ASSERT(!empty());
    std::uint32_t rest = active;
    unsigned best = static_cast<unsigned>(__builtin_ctz(rest));
    rest &= rest - 1;
    while (rest != 0) {
      const unsigned id = static_cast<unsigned>(__builtin_ctz(rest));
      rest &= rest - 1;
      if (groups[id].vruntime < groups[best].vruntime) best = id;
    }
    min_vruntime = groups[best].vruntime;
    return best;
  }

  /// Group `id` ran `ns` nanoseconds with `shares`.
  void charge(unsigned id, std::int64_t ns, std::int64_t shares) noexcept {
    groups[id].runtime_ns += static_cast<std::uint64_t>(ns);
    groups[id].vruntime += static_cast<double>(ns) / static_cast<double>(shares);
  }
};

}  // namespace reef::core_internal
