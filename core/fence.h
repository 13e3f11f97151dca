// The store-then-load ordering of the sleep/wake handshake between a thread
// that publishes work and a reactor that goes to sleep: each side stores
// (the work; "I sleep"), then loads what the other stored. A full fence
// between the two makes sure at least one side sees the other.
// ThreadSanitizer does not model fences; it gets an equivalent
// read-modify-write instead. Any thread. Public: smp's queues and anything
// else that wakes a reactor after publishing work use it.
#pragma once

#include <atomic>

#include "core/sanitizers.h"

namespace reef {

/// A full fence between a store and a later load of another variable.
inline void store_load_fence() noexcept {
#if defined(REEF_TSAN)
  static std::atomic<int> ordering{0};
  ordering.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace reef
