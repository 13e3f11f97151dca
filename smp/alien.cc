#include "smp/alien.h"

#include "core/reactor.h"

namespace reef::alien {

void message_queue::push(std::unique_ptr<item> i) {
  {
    std::lock_guard lock(_mutex);
    _items.push_back(std::move(i));
    _pending.store(true, std::memory_order_release);
  }
  // Published above; see smp_message_queue::wake for why the fence.
  internal::store_load_fence();
  _reactor->wakeup();
}

std::size_t message_queue::process() noexcept {
  if (!_pending.load(std::memory_order_acquire)) return 0;
  std::vector<std::unique_ptr<item>> batch;
  {
    std::lock_guard lock(_mutex);
    batch.swap(_items);
    _pending.store(false, std::memory_order_relaxed);
  }
  for (auto& i : batch) i.release()->run_and_dispose();
  return batch.size();
}

}  // namespace reef::alien
