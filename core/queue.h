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
#include <exception>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/circular_buffer.h"
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
  /// A consumer waiting in pop_eventually() gets it straight away.
  /// REQUIRES: not aborted.
  bool push(T&& item) {
    REEF_ASSERT(!_exception, "push() on an aborted queue");
    if (full()) return false;
    if (_pop_waiter) {
      auto waiter = std::move(*_pop_waiter);
      _pop_waiter.reset();
      waiter.set_value(std::move(item));
      return true;
    }
    _items.push_back(std::move(item));
    notify(_not_empty);
    return true;
  }

  /// Removes the oldest item. REQUIRES: !empty().
  T pop() {
    REEF_ASSERT(!_items.empty(), "pop() on an empty queue");
    T item = std::move(_items.front());
    _items.pop_front();
    if (_push_waiter && !full()) {
      admit_waiting_push();
    } else {
      notify(_not_full);
    }
    return item;
  }

  /// The oldest item, now or once one is pushed. The item is handed to the
  /// waiting future itself: the queue is not touched again once it
  /// resolves (the queue may even be gone by then; if it goes first, the
  /// future fails with broken_promise).
  future<T> pop_eventually() noexcept {
    if (_exception) return make_exception_future<T>(_exception);
    if (!_items.empty()) return make_ready_future<T>(pop());
    REEF_ASSERT(!_pop_waiter, "a second waiting consumer on a queue");
    _pop_waiter.emplace();
    return _pop_waiter->get_future();
  }

  /// Adds `item` now, or once there is room (the queue keeps it meanwhile).
  future<> push_eventually(T&& item) noexcept {
    if (_exception) return make_exception_future<>(_exception);
    if (!full()) {
      push(std::move(item));
      return make_ready_future<>();
    }
    REEF_ASSERT(!_push_waiter, "a second waiting producer on a queue");
    try {
      _push_waiter.emplace(waiting_push{std::move(item), promise<>()});
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
    return _push_waiter->done.get_future();
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
    if (_pop_waiter) std::exchange(_pop_waiter, std::nullopt)->set_exception(ex);
    if (_push_waiter) {
      auto done = std::move(_push_waiter->done);
      _push_waiter.reset();
      done.set_exception(ex);
    }
  }

  std::size_t size() const noexcept { return _items.size(); }
  std::size_t max_size() const noexcept { return _max_size; }
  bool empty() const noexcept { return _items.empty(); }
  bool full() const noexcept { return _items.size() >= _max_size; }

  /// Changes the limit; items already queued stay even above it.
  void set_max_size(std::size_t max_size) noexcept {
    REEF_ASSERT(max_size >= 1);
    _max_size = max_size;
    if (full()) return;
    if (_push_waiter) {
      admit_waiting_push();
    } else {
      notify(_not_full);
    }
  }

 private:
  // The producer waiting in push_eventually() takes the room there is; if
  // the item cannot be stored (no memory), its future says so.
  void admit_waiting_push() noexcept {
    auto done = std::move(_push_waiter->done);
    try {
      _items.push_back(std::move(_push_waiter->item));
    } catch (...) {
      _push_waiter.reset();
      done.set_exception(std::current_exception());
      return;
    }
    _push_waiter.reset();
    done.set_value();
  }

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

  struct waiting_push {
    T item;
    promise<> done;
  };

  circular_buffer<T> _items;
  std::size_t _max_size;
  std::optional<promise<>> _not_empty;
  std::optional<promise<>> _not_full;
  std::optional<promise<T>> _pop_waiter;      // pop_eventually() on an empty queue
  std::optional<waiting_push> _push_waiter;   // push_eventually() on a full one
  std::exception_ptr _exception;
};

}  // namespace reef
