// The point-to-point queues between shards.
//
// Every ordered pair of shards (a, b) has one smp_message_queue: a ring of
// requests from a to b and a ring of completions from b back to a, each
// single-producer single-consumer and lock-free. A request is a work_item
// that shard a allocates and fills; shard b runs it and hands the same item
// back through the completion ring; shard a delivers the result and frees
// the item, so memory never changes owner.
//
// Batching: while requests are in flight, new ones are collected on the
// sending side and pushed into the ring in batches (when a batch fills, and
// once per reactor loop iteration), so one cache-line transfer carries many
// messages; the first request to an idle pair goes at once (latency). The
// receiving side pops in batches, and batches its answers the same way. A
// sleeping peer is woken (one eventfd write) only when it is actually
// asleep.
//
// Limits: at most `in_flight_max` requests of one pair are in the ring or
// being served at a time. Requests beyond that wait, in submission order, in
// the sender's overflow list (sender memory), and go into the ring as
// answers come back; nothing is dropped and nothing overtakes. The rings
// hold `ring_capacity` >= `in_flight_max` items, so they never refuse one.
//
// Thread rules: the tx side (submit, flush_requests, complete_responses) is
// used only by shard a, the rx side (process_requests, flush_responses) only
// by shard b. The two sides live on separate cache lines.
#pragma once

#include "core/fence.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <new>
#include <vector>

#include "core/future.h"

namespace reef {

class reactor;

namespace smp_internal {

/// A bounded single-producer single-consumer ring of pointers. The producer
/// and the consumer each keep a private copy of the other's index and reload
/// it only when the ring looks full (empty), so most operations touch no
/// shared cache line but the slots.
template <typename T, std::size_t Capacity>
class spsc_ring {
  static_assert((Capacity & (Capacity - 1)) == 0, "capacity must be a power of two");
  static constexpr std::size_t line = 64;

 public:
  /// Producer: pushes up to `n` items; returns how many fit.
  std::size_t push(T* const* items, std::size_t n) noexcept {
    std::size_t tail = _tail.load(std::memory_order_relaxed);
    std::size_t room = Capacity - (tail - _producer_head_copy);
    if (room < n) {
      _producer_head_copy = _head.load(std::memory_order_acquire);
      room = Capacity - (tail - _producer_head_copy);
    }
    if (n > room) n = room;
    for (std::size_t i = 0; i < n; ++i) _slots[(tail + i) & (Capacity - 1)] = items[i];
    if (n > 0) _tail.store(tail + n, std::memory_order_release);
    return n;
  }

  /// Consumer: pops up to `n` items into `out`; returns how many.
  std::size_t pop(T** out, std::size_t n) noexcept {
    std::size_t head = _head.load(std::memory_order_relaxed);
    std::size_t ready = _consumer_tail_copy - head;
    if (ready < n) {
      _consumer_tail_copy = _tail.load(std::memory_order_acquire);
      ready = _consumer_tail_copy - head;
    }
    if (n > ready) n = ready;
    for (std::size_t i = 0; i < n; ++i) out[i] = _slots[(head + i) & (Capacity - 1)];
    if (n > 0) _head.store(head + n, std::memory_order_release);
    return n;
  }

  /// Consumer: whether anything waits (a fresh look at the producer's index).
  bool has_items() const noexcept {
    return _tail.load(std::memory_order_acquire) != _head.load(std::memory_order_relaxed);
  }

 private:
  alignas(line) std::atomic<std::size_t> _head{0};  // written by the consumer
  std::size_t _consumer_tail_copy = 0;
  alignas(line) std::atomic<std::size_t> _tail{0};  // written by the producer
  std::size_t _producer_head_copy = 0;
  alignas(line) T* _slots[Capacity];
};

class smp_message_queue;

/// One message: created and freed on the sending shard, run on the
/// receiving one.
class work_item {
 public:
  virtual ~work_item() = default;
  /// On the receiving shard: runs the work; when its future resolves, hands
  /// the item back with queue.respond(this).
  virtual void process(smp_message_queue& queue) noexcept = 0;
  /// On the sending shard: delivers the result; frees the item.
  virtual void complete() noexcept = 0;
};

class smp_message_queue {
 public:
  // (No more than in_flight_max items are ever in a ring: a queue is small,
  // and a shard has one to every other.)
  static constexpr std::size_t ring_capacity = 128;
  static constexpr std::size_t batch_max = 16;
  static constexpr std::size_t in_flight_max = 128;
  static_assert(ring_capacity >= in_flight_max, "a ring never refuses an item in flight");

  smp_message_queue(reactor* from, reactor* to);
  smp_message_queue(const smp_message_queue&) = delete;
  smp_message_queue& operator=(const smp_message_queue&) = delete;

  // --- Sending shard. ---

  /// Queues `item` behind the earlier ones; it reaches the ring once it is
  /// within the in-flight limit. The item is owned by the queue from here
  /// until complete(). Throws std::bad_alloc (item not queued) only if the
  /// overflow list cannot grow.
  void submit(work_item* item);
  /// Pushes the collected batch into the ring; wakes the receiver if it
  /// sleeps. Returns whether anything was pushed.
  bool flush_requests() noexcept;
  /// Delivers the results that came back. Returns how many.
  std::size_t complete_responses() noexcept;
  /// Whether the sending side has work: requests to flush or responses to
  /// deliver.
  bool tx_has_work() const noexcept {
    return (!_tx.pending.empty() && _tx.in_ring < in_flight_max) || _completions.has_items();
  }
  /// Requests submitted and not yet completed (in the ring, served, or
  /// waiting in the overflow list).
  std::size_t in_flight() const noexcept { return _tx.in_ring + _tx.pending.size(); }

  // --- Receiving shard. ---

  /// Runs the requests that arrived. Returns how many.
  std::size_t process_requests() noexcept;
  /// Hands a finished item back (called by work_item::process, later).
  void respond(work_item* item) noexcept;
  /// Pushes finished items into the completion ring; wakes the sender if it
  /// sleeps.
  bool flush_responses() noexcept;
  /// Whether the receiving side has work.
  bool rx_has_work() const noexcept {
    return !_rx.pending.empty() || _requests.has_items();
  }

 private:
  void wake(reactor* r) noexcept;

  spsc_ring<work_item, ring_capacity> _requests;
  spsc_ring<work_item, ring_capacity> _completions;

  struct alignas(64) tx_side {
    reactor* peer;                    // the receiver, to wake
    std::deque<work_item*> pending;   // submitted, not yet in the ring, in order
    std::size_t in_ring = 0;          // pushed into the ring, not yet completed
  } _tx;

  struct alignas(64) rx_side {
    reactor* peer;  // the sender, to wake
    std::vector<work_item*> pending;
  } _rx;
};

}  // namespace smp_internal
}  // namespace reef
