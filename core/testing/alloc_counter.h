// Counts allocations made by this thread, for benchmarks that prove how many
// allocations an operation costs (and makes them fail, for tests): operator new calls (linking
// //core/testing:alloc_counter replaces the global operator new/delete; they
// still use malloc/free) and task memory requests, which the per-thread task
// memory cache of core/task.h serves mostly without operator new.
#pragma once

#include <cstdint>

namespace reef::testing {

/// operator new calls on this thread since it started.
std::uint64_t allocations() noexcept;

/// While one lives, every operator new on this thread fails
/// (std::bad_alloc, or nullptr for the nothrow forms): for tests of what
/// code does when memory runs out. Task memory the per-thread cache holds
/// is still served.
class allocation_failure_scope {
 public:
  allocation_failure_scope() noexcept;
  ~allocation_failure_scope();
  allocation_failure_scope(const allocation_failure_scope&) = delete;
  allocation_failure_scope& operator=(const allocation_failure_scope&) = delete;
};

/// Task memory requests (continuations, coroutine frames, tasks) on this
/// thread since it started, whether the cache or operator new served them.
std::uint64_t task_allocations() noexcept;

}  // namespace reef::testing
