// Counts allocations made by this thread, for benchmarks that prove how many
// allocations an operation costs: operator new calls (linking
// //core/testing:alloc_counter replaces the global operator new/delete; they
// still use malloc/free) and task memory requests, which the per-thread task
// memory cache of core/task.h serves mostly without operator new.
#pragma once

#include <cstdint>

namespace reef::testing {

/// operator new calls on this thread since it started.
std::uint64_t allocations() noexcept;

/// Task memory requests (continuations, coroutine frames, tasks) on this
/// thread since it started, whether the cache or operator new served them.
std::uint64_t task_allocations() noexcept;

}  // namespace reef::testing
