#include "smp/alien.h"

#include "core/reactor.h"

#include <utility>

namespace reef::alien {

void message_queue::attach(reactor* r, unsigned shard) noexcept {
  std::lock_guard lock(_mutex);
  _reactor = r;
  _shard = shard;
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
  const auto stopped = std::make_exception_ptr(shard_stopped_error(_shard));
  // Never started: they fail and go.
  for (auto& i : dropped) i->fail(stopped);
  // Started, waiting for a future that may never resolve now: they fail;
  // each frees itself if its future resolves after all.
  for (item* i : std::exchange(_running, {})) i->fail(stopped);
}

void message_queue::started(item* i) { _running.push_back(i); }

void message_queue::finished(item* i) noexcept {
  for (auto it = _running.begin(); it != _running.end(); ++it) {
    if (*it == i) {
      *it = _running.back();
      _running.pop_back();
      return;
    }
  }
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
  store_load_fence();
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
  for (auto& i : batch) i.release()->run_and_dispose(*this);
  return batch.size();
}

}  // namespace reef::alien
