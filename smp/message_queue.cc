#include "smp/message_queue.h"

#include <algorithm>

#include "core/reactor.h"

namespace reef::smp_internal {

smp_message_queue::smp_message_queue(reactor* from, reactor* to) {
  _tx.peer = to;
  _rx.peer = from;
  // At most in_flight_max answers are ever owed: respond() never grows it.
  _rx.pending.reserve(in_flight_max);
}

void smp_message_queue::wake(reactor* r) noexcept {
  // The ring's index was published (release); the fence orders it before
  // reading whether the peer sleeps, as the peer orders announcing its
  // sleep before its last look at the ring: one of the two sees the other.
  store_load_fence();
  r->wakeup();
}

void smp_message_queue::submit(work_item* item) {
  _tx.pending.push_back(item);
  // An idle pair: send now, nothing to batch with. A busy one: batch.
  bool idle = _tx.in_ring == 0 && _tx.pending.size() == 1;
  if (idle || _tx.pending.size() >= batch_max) flush_requests();
}



bool smp_message_queue::flush_requests() noexcept {
  if (_tx.pending.empty() || _tx.in_ring >= in_flight_max) return false;
  work_item* batch[batch_max];
  bool pushed = false;
  while (!_tx.pending.empty() && _tx.in_ring < in_flight_max) {
    std::size_t n = std::min({_tx.pending.size(), batch_max, in_flight_max - _tx.in_ring});
    std::copy_n(_tx.pending.begin(), n, batch);
    std::size_t done = _requests.push(batch, n);  // always all: capacity >= in_flight_max
    _tx.pending.erase(_tx.pending.begin(), _tx.pending.begin() + static_cast<std::ptrdiff_t>(done));
    _tx.in_ring += done;
    pushed |= done > 0;
    if (done < n) break;
  }
  if (pushed) wake(_tx.peer);
  return pushed;
}

std::size_t smp_message_queue::complete_responses() noexcept {
  work_item* batch[batch_max];
  std::size_t total = 0;
  for (;;) {
    std::size_t n = _completions.pop(batch, batch_max);
    for (std::size_t i = 0; i < n; ++i) {
      --_tx.in_ring;
      batch[i]->complete();
    }
    total += n;
    if (n < batch_max) return total;
  }
}

std::size_t smp_message_queue::process_requests() noexcept {
  work_item* batch[batch_max];
  std::size_t total = 0;
  for (;;) {
    std::size_t n = _requests.pop(batch, batch_max);
    for (std::size_t i = 0; i < n; ++i) batch[i]->process(*this);
    total += n;
    if (n < batch_max) return total;
  }
}

void smp_message_queue::respond(work_item* item) noexcept {
  _rx.pending.push_back(item);  // reserved to in_flight_max: never reallocates
  if (_rx.pending.size() >= batch_max) flush_responses();
}

bool smp_message_queue::flush_responses() noexcept {
  if (_rx.pending.empty()) return false;
  std::size_t n = _completions.push(_rx.pending.data(), _rx.pending.size());
  if (n == 0) return false;
  _rx.pending.erase(_rx.pending.begin(), _rx.pending.begin() + static_cast<std::ptrdiff_t>(n));
  wake(_rx.peer);
  return true;
}

}  // namespace reef::smp_internal
