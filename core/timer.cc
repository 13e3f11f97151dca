#include "core/timer.h"

#include <utility>

namespace reef {

namespace {
thread_local lowres_clock::rep lowres_now_ns = 0;
}  // namespace

lowres_clock::time_point lowres_clock::now() noexcept {
  rep ns = lowres_now_ns;
  if (ns == 0) ns = core_internal::to_timer_ns(steady_clock_type::now());
  return time_point(duration(ns));
}

void lowres_clock::update() noexcept {
  lowres_now_ns = core_internal::to_timer_ns(steady_clock_type::now());
}

void lowres_clock::update(time_point now) noexcept { lowres_now_ns = now.time_since_epoch().count(); }

namespace core_internal {

bool timer_base::cancel() noexcept {
  switch (_state) {
    case state::idle:
      return false;
    case state::armed:
      _queue->remove(this);
      _state = state::idle;
      return true;
    case state::expiring:
      // Taken out of the heap but its callback has not run: it never will.
      _queue->_expiring[_index] = nullptr;
      _state = state::idle;
      return true;
  }
  return false;
}

void timer_base::arm_ns(timer_ns deadline, std::optional<timer_ns> period, timer_queue* q) noexcept {
  REEF_ASSERT(_state != state::armed);
  if (q == nullptr) q = current_timer_queue;
  REEF_ASSERT(q != nullptr, "a timer was armed on a thread with no reactor");
  if (_state == state::expiring) cancel();
  _deadline = deadline;
  _period = period.value_or(0);
  _queue = q;
  _state = state::armed;
  q->add(this);
}

timer_queue::~timer_queue() {
  for (timer_base* t : _heap) t->_state = timer_base::state::idle;
}

void timer_queue::add(timer_base* t) noexcept {
  _heap.push_back(t);
  t->_index = _heap.size() - 1;
  sift_up(t->_index);
}

void timer_queue::remove(timer_base* t) noexcept {
  std::size_t i = t->_index;
  REEF_DEBUG_ASSERT(i < _heap.size() && _heap[i] == t);
  timer_base* last = _heap.back();
  _heap.pop_back();
  if (i == _heap.size()) return;  // it was the last
  place(i, last);
  if (i > 0 && last->_deadline < _heap[(i - 1) / 2]->_deadline) {
    sift_up(i);
  } else {
    sift_down(i);
  }
}

void timer_queue::sift_up(std::size_t i) noexcept {
  timer_base* t = _heap[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (_heap[parent]->_deadline <= t->_deadline) break;
    place(i, _heap[parent]);
    i = parent;
  }
  place(i, t);
}

void timer_queue::sift_down(std::size_t i) noexcept {
  timer_base* t = _heap[i];
  std::size_t n = _heap.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && _heap[child + 1]->_deadline < _heap[child]->_deadline) ++child;
    if (t->_deadline <= _heap[child]->_deadline) break;
    place(i, _heap[child]);
    i = child;
  }
  place(i, t);
}

std::size_t timer_queue::expire(timer_ns now) noexcept {
  if (_heap.empty() || _heap.front()->_deadline > now) return 0;
  REEF_ASSERT(_expiring.empty(), "timer_queue::expire() re-entered");
  // Take every expired timer out first, so that callbacks arming timers for
  // "now" cannot keep this call going forever.
  while (!_heap.empty() && _heap.front()->_deadline <= now) {
    timer_base* t = _heap.front();
    remove(t);
    t->_state = timer_base::state::expiring;
    t->_index = _expiring.size();
    _expiring.push_back(t);
  }
  std::size_t fired = 0;
  for (std::size_t i = 0; i < _expiring.size(); ++i) {
    timer_base* t = _expiring[i];
    if (t == nullptr) continue;  // cancelled by an earlier callback
    _expiring[i] = nullptr;
    t->_state = timer_base::state::idle;
    if (t->_period > 0) {
      // Keep the phase; if the loop fell behind, do not fire a burst.
      timer_ns next = t->_deadline + t->_period;
      if (next <= now) next = now + t->_period;
      t->_deadline = next;
      t->_state = timer_base::state::armed;
      add(t);
    }
    ++fired;
    if (t->_callback) t->_callback();
  }
  _expiring.clear();
  return fired;
}

}  // namespace core_internal
}  // namespace reef
