// A bounded single-consumer queue for asynchronous producers and a consumer
// on one shard.
//
// At the limit: push() refuses (returns false) and push_eventually() waits
// until the consumer makes room; nothing is dropped silently. abort() fails
// the waiting producer or consumer and every later call.
//
// Thread rules: one thread (shard); at most one pending pop_eventually()
// (one consumer) and one pending push_eventually() at a time.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/future.h"

namespace reef {

template <typename T>
class queue {
 public:
  /// REQUIRES: max_size >= 1.
  explicit queue(std::size_t max_size) noexcept : _max_size(max_size) {
    REEF_ASSERT(max_size >= 1, "a queue holds at least one item");
  }
  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;

  /// Adds `item` if there is room; false (and `item` untouched) if full.
  /// REQUIRES: not aborted.
  bool push(T&& item) {
    REEF_ASSERT(!_exception, "push() on an aborted queue");
    if (full()) return false;
    _items.push_back(std::move(item));
    notify(_not_empty);
    return true;
  }

  /// Removes the oldest item. REQUIRES: !empty().
  T pop() {
    REEF_ASSERT(!_items.empty(), "pop() on an empty queue");
    T item = std::move(_items.front());
    _items.pop_front();
    notify(_not_full);
    return item;
  }

  /// The oldest item, now or once one is pushed.
  future<T> pop_eventually() noexcept {
    if (_exception) return make_exception_future<T>(_exception);
    if (!_items.empty()) return make_ready_future<T>(pop());
    return not_empty().then([this] { return pop_eventually(); });
  }

  /// Adds `item` now, or once there is room.
  future<> push_eventually(T&& item) noexcept {
    if (_exception) return make_exception_future<>(_exception);
    if (!full()) {
      push(std::move(item));
      return make_ready_future<>();
    }
    return not_full().then([this, item = std::move(item)]() mutable {
      return push_eventually(std::move(item));
    });
  }

  /// Resolves when the queue has an item (at once if it has).
  future<> not_empty() noexcept { return wait(_not_empty, !_items.empty()); }

  /// Resolves when the queue has room (at once if it has).
  future<> not_full() noexcept { return wait(_not_full, !full()); }

  /// Fails waiting and later calls with `ex`; the items are dropped.
  void abort(std::exception_ptr ex) noexcept {
    _exception = ex;
    _items.clear();
    if (_not_empty) std::exchange(_not_empty, std::nullopt)->set_exception(ex);
    if (_not_full) std::exchange(_not_full, std::nullopt)->set_exception(ex);
  }

  std::size_t size() const noexcept { return _items.size(); }
  std::size_t max_size() const noexcept { return _max_size; }
  bool empty() const noexcept { return _items.empty(); }
  bool full() const noexcept { return _items.size() >= _max_size; }

  /// Changes the limit; items already queued stay even above it.
  void set_max_size(std::size_t max_size) noexcept {
    REEF_ASSERT(max_size >= 1);
    _max_size = max_size;
    if (!full()) notify(_not_full);
  }

 private:
  future<> wait(std::optional<promise<>>& slot, bool satisfied) noexcept {
    if (_exception) return make_exception_future<>(_exception);
    if (satisfied) return make_ready_future<>();
    REEF_ASSERT(!slot, "a second waiter on one side of a queue");
    slot.emplace();
    return slot->get_future();
  }

  static void notify(std::optional<promise<>>& slot) noexcept {
    if (slot) std::exchange(slot, std::nullopt)->set_value();
  }

  std::deque<T> _items;
  std::size_t _max_size;
  std::optional<promise<>> _not_empty;
  std::optional<promise<>> _not_full;
  std::exception_ptr _exception;
};

}  // namespace reef
