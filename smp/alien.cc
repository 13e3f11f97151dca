#include "smp/alien.h"

#include "core/reactor.h"

namespace reef::alien {

void message_queue::attach(reactor* r) noexcept {
  std::lock_guard lock(_mutex);
  _reactor = r;
}

void message_queue::detach() noexcept {
  std::vector<std::unique_ptr<item>> dropped;
  {
    std::lock_guard lock(_mutex);
    _reactor = nullptr;
    dropped.swap(_items);
    _pending.store(false, std::memory_order_relaxed);
  }
  _room.notify_all();
}

bool message_queue::push(std::unique_ptr<item> i) {
  std::unique_lock lock(_mutex);
  _room.wait(lock, [this] { return _reactor == nullptr || _items.size() < items_max; });
  if (_reactor == nullptr) return false;
  _items.push_back(std::move(i));
  _pending.store(true, std::memory_order_release);
  // Published above; see smp_message_queue::wake for the fence. The wake-up
  // happens under the lock, so the reactor cannot go away meanwhile
  // (detach() takes the lock before it does).
  internal::store_load_fence();
  _reactor->wakeup();
  return true;
}

std::size_t message_queue::process() noexcept {
  if (!_pending.load(std::memory_order_acquire)) return 0;
  std::vector<std::unique_ptr<item>> batch;
  {
    std::lock_guard lock(_mutex);
    batch.swap(_items);
    _pending.store(false, std::memory_order_relaxed);
  }
  _room.notify_all();
  for (auto& i : batch) i.release()->run_and_dispose();
  return batch.size();
}

}  // namespace reef::alien
