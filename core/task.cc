#include "core/task.h"

#include <cstdio>
#include <cstdlib>

namespace reef::core_internal {

void no_scheduler() noexcept {
  std::fputs("reef: a task was scheduled on a thread with no scheduler (no running reactor)\n",
             stderr);
  std::abort();
}

namespace {

// Frees this thread's cached task memory when the thread exits.
struct task_memory_cleanup {
  ~task_memory_cleanup() {
    task_memory_cache& cache = this_thread_task_memory;
    for (std::size_t c = 0; c < task_memory_cache::classes; ++c) {
      while (task_memory_cache::block* b = cache.free[c]) {
        cache.free[c] = b->next;
        ::operator delete(b);
      }
      // Tasks freed by later thread-exit destructors go straight back to
      // operator delete.
      cache.count[c] = task_memory_cache::per_class_max;
    }
  }
};

}  // namespace

void register_task_memory_cleanup() noexcept {
  thread_local task_memory_cleanup cleanup;
  (void)&cleanup;
  this_thread_task_memory.cleanup_registered = true;
}

}  // namespace reef::core_internal
