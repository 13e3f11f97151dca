// Asynchronous loops.
//
//   repeat(action)                   until action's future says stop
//   do_until(stop_condition, action) action until the condition holds
//   keep_doing(action)               action until it fails
//   do_for_each(range, action)       action on each element, one at a time
//   parallel_for_each(range, func)   func on every element at once
//   max_concurrent_for_each(range, n, func)   at most n at once
//
// Iterations whose futures are ready run in a plain loop and yield to the
// reactor when need_preempt() says so. A loop allocates one state object
// for all its iterations, not one per iteration, and moves its callable
// there before the first call: a coroutine lambda's frame refers to the
// lambda object, which must not move while the coroutine is suspended.
// (parallel_for_each, which allocates nothing when every element is ready,
// calls `func` where the caller keeps it: see its comment.) A failure stops
// the loop (the parallel forms wait for what was started) and fails the
// returned future.
//
// Thread rules: a loop runs on the calling thread; its callables are moved
// into the loop's state, called on this thread, and destroyed when the
// returned future resolves.
#pragma once

#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/future.h"
#include "core/task.h"

namespace reef {

/// What an iteration of repeat() returns: go on, or stop.
enum class stop_iteration : bool { no = false, yes = true };

namespace core_internal {

// The state of a repeat(): the action, the task that resumes the loop, and
// the slot where an awaited iteration's result lands. Allocated before the
// first call, so that an action whose call suspends (a coroutine lambda, whose
// frame refers to the lambda object) is never moved while suspended.
template <typename Action>
class repeater final : public task {
 public:
  template <typename A>
  explicit repeater(A&& action) : _action(std::forward<A>(action)) {}

  future<> get_future() noexcept { return _done.get_future(); }

  // Runs iterations until one must be waited for (false) or the loop ends
  // (true: the promise is resolved).
  bool run_iterations() noexcept {
    for (;;) {
      auto f = futurize_invoke(_action);
      if (!f.available() || need_preempt()) {
        future_access::set_waiter(f, &_state, this);
        return false;
      }
      if (f.failed()) {
        _done.set_exception(f.get_exception());
        return true;
      }
      if (f.get() == stop_iteration::yes) {
        _done.set_value();
        return true;
      }
    }
  }

  void run_and_dispose() noexcept override {
    if (_state.failed()) {
      _done.set_exception(_state.take_exception());
    } else if (_state.take_value() == stop_iteration::yes) {
      _done.set_value();
    } else if (!run_iterations()) {
      return;  // waiting again
    }
    delete this;
  }

 private:
  promise<> _done;
  future_state<stop_iteration> _state;
  Action _action;
};

}  // namespace core_internal

/// Calls `action()` (returning stop_iteration or future<stop_iteration>)
/// until it returns stop_iteration::yes. Ready iterations run in a loop;
/// the loop allocates one state object, however many iterations it runs.
template <typename Action>
future<> repeat(Action&& action) noexcept {
  using result = futurize_t<std::invoke_result_t<Action&>>;
  static_assert(std::is_same_v<result, future<stop_iteration>>,
                "repeat()'s action returns stop_iteration or future<stop_iteration>");
  core_internal::repeater<std::decay_t<Action>>* r;
  try {
    r = new core_internal::repeater<std::decay_t<Action>>(std::forward<Action>(action));
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
  future<> done = r->get_future();
  if (r->run_iterations()) delete r;
  return done;
}

/// Calls `action()` (returning void or future<>) until `stop_condition()`,
/// checked before each call, is true.
template <typename StopCondition, typename Action>
future<> do_until(StopCondition&& stop_condition, Action&& action) noexcept {
  return repeat([stop = std::forward<StopCondition>(stop_condition),
                 act = std::forward<Action>(action)]() mutable -> future<stop_iteration> {
    if (stop()) return make_ready_future<stop_iteration>(stop_iteration::yes);
    return futurize_invoke(act).then([] { return stop_iteration::no; });
  });
}

/// Calls `action()` (returning void or future<>) again and again; the
/// returned future resolves only with the first failure.
template <typename Action>
future<> keep_doing(Action&& action) noexcept {
  return repeat([act = std::forward<Action>(action)]() mutable {
    return futurize_invoke(act).then([] { return stop_iteration::no; });
  });
}

/// Calls `action(*it)` for each element of [begin, end), the next only
/// after the previous one's future resolved. The range must outlive the
/// returned future.
template <typename Iterator, typename Sentinel, typename Action>
future<> do_for_each(Iterator begin, Sentinel end, Action&& action) noexcept {
  return repeat([it = std::move(begin), end = std::move(end),
                 act = std::forward<Action>(action)]() mutable -> future<stop_iteration> {
    if (it == end) return make_ready_future<stop_iteration>(stop_iteration::yes);
    auto f = futurize_invoke(act, *it);
    ++it;
    return f.then([] { return stop_iteration::no; });
  });
}

/// do_for_each over a whole range (which must outlive the returned future).
template <typename Range, typename Action>
future<> do_for_each(Range& range, Action&& action) noexcept {
  return do_for_each(std::begin(range), std::end(range), std::forward<Action>(action));
}

namespace core_internal {

// What a parallel_for_each waits for: the futures that were not ready when
// started, awaited one at a time (most are ready by the time their turn
// comes, so one wait covers many).
class parallel_for_each_state final : public task {
 public:
  explicit parallel_for_each_state(std::size_t expected) { _incomplete.reserve(expected); }
  void add(future<>&& f) { _incomplete.push_back(std::move(f)); }

  future<> get_future() noexcept { return _done.get_future(); }

  // Records a ready future's failure (the first one is kept).
  void absorb(future<>& f) noexcept {
    if (!f.failed()) {
      f.ignore_ready_future();
    } else if (!_exception) {
      _exception = f.get_exception();
    } else {
      f.ignore_ready_future();  // one failure is reported; the rest are dropped
    }
  }

  // Waits for the next incomplete future, or resolves; false if waiting.
  bool wait_next() noexcept {
    while (!_incomplete.empty()) {
      future<>& f = _incomplete.back();
      if (!f.available()) {
        future_access::set_waiter(f, &_state, this);
        _incomplete.pop_back();
        return false;
      }
      absorb(f);
      _incomplete.pop_back();
    }
    if (_exception) {
      _done.set_exception(std::move(_exception));
    } else {
      _done.set_value();
    }
    return true;
  }

  void run_and_dispose() noexcept override {
    future<> f(std::move(_state));
    absorb(f);
    if (wait_next()) delete this;
  }

 private:
  std::vector<future<>> _incomplete;
  future_state<void> _state;
  std::exception_ptr _exception;
  promise<> _done;
};

}  // namespace core_internal

/// Calls `func(*it)` (returning void or future<>) for every element of
/// [begin, end) at once; resolves when all have, failing with one of their
/// failures if any failed. Elements are passed as the iterator yields them;
/// the range need not outlive the call. `func` is called where the caller
/// keeps it and not moved: if it is a coroutine lambda with captures, it
/// must outlive the returned future (true of a temporary in
/// `co_await parallel_for_each(...)`).
template <typename Iterator, typename Sentinel, typename Func>
future<> parallel_for_each(Iterator begin, Sentinel end, Func&& func) noexcept {
  core_internal::parallel_for_each_state* state = nullptr;
  try {
    for (; begin != end; ++begin) {
      future<> f = futurize_invoke(func, *begin);
      if (f.available() && !f.failed()) {
        f.ignore_ready_future();
        continue;
      }
      if (state == nullptr) {
        // Room for the rest at once, when the range can say how many.
        std::size_t rest = 1;
        if constexpr (std::is_base_of_v<std::forward_iterator_tag,
                                        typename std::iterator_traits<Iterator>::iterator_category> &&
                      std::is_same_v<Iterator, Sentinel>) {
          rest = static_cast<std::size_t>(std::distance(begin, end));
        }
        state = new core_internal::parallel_for_each_state(rest);
      }
      state->add(std::move(f));
    }
  } catch (...) {
    if (state == nullptr) return make_exception_future<>(std::current_exception());
    state->add(make_exception_future<>(std::current_exception()));
  }
  if (state == nullptr) return make_ready_future<>();
  future<> done = state->get_future();
  if (state->wait_next()) delete state;
  return done;
}

/// parallel_for_each over a whole range.
template <typename Range, typename Func>
future<> parallel_for_each(Range&& range, Func&& func) noexcept {
  return parallel_for_each(std::begin(range), std::end(range), std::forward<Func>(func));
}

namespace core_internal {

// The state of a max_concurrent_for_each(); also the task that resumes it
// after it yielded to the reactor (a long run of ready elements).
template <typename Iterator, typename Sentinel, typename Func>
class bounded_for_each final : public task {
 public:
  bounded_for_each(Iterator begin, Sentinel end, std::size_t limit, Func&& func)
      : _it(std::move(begin)), _end(std::move(end)), _limit(limit), _func(std::move(func)) {}

  future<> get_future() noexcept { return _done.get_future(); }

  void run_and_dispose() noexcept override {
    _resume_scheduled = false;
    pump(this);
  }

  // Starts elements until `limit` run or none is left; deletes `self` and
  // resolves when everything is done. While a resume is scheduled, that
  // resume does the work.
  static void pump(bounded_for_each* self) noexcept {
    if (self->_resume_scheduled) return;
    while (self->_running < self->_limit && !(self->_it == self->_end) && !self->_exception) {
      future<> f = futurize_invoke(self->_func, *self->_it);
      ++self->_it;
      if (f.available()) {
        self->absorb(f);
        if (need_preempt() && !(self->_it == self->_end)) {
          self->_resume_scheduled = true;
          schedule(self);
          return;
        }
        continue;
      }
      ++self->_running;
      (void)f.then_wrapped([self](future<>&& done) {
        --self->_running;
        self->absorb(done);
        pump(self);
      });
    }
    if (self->_running == 0 && (self->_it == self->_end || self->_exception)) {
      if (self->_exception) {
        self->_done.set_exception(std::move(self->_exception));
      } else {
        self->_done.set_value();
      }
      delete self;
    }
  }

 private:
  void absorb(future<>& f) noexcept {
    if (f.failed() && !_exception) {
      _exception = f.get_exception();
    } else {
      f.ignore_ready_future();
    }
  }

  Iterator _it;
  Sentinel _end;
  std::size_t _limit;
  std::size_t _running = 0;
  Func _func;
  std::exception_ptr _exception;
  promise<> _done;
  bool _resume_scheduled = false;
};

}  // namespace core_internal

/// Calls `func(*it)` for the elements of [begin, end) with at most
/// `concurrency` (>= 1) of their futures unresolved at a time. After a
/// failure no new element starts; the returned future fails once the
/// running ones are done. The range must outlive the returned future.
template <typename Iterator, typename Sentinel, typename Func>
future<> max_concurrent_for_each(Iterator begin, Sentinel end, std::size_t concurrency,
                                 Func&& func) noexcept {
  if (concurrency == 0) {
    return make_exception_future<>(
        std::invalid_argument("max_concurrent_for_each: concurrency must be at least 1"));
  }
  using state = core_internal::bounded_for_each<Iterator, Sentinel, std::decay_t<Func>>;
  try {
    auto* s = new state(std::move(begin), std::move(end), concurrency, std::forward<Func>(func));
    future<> done = s->get_future();
    state::pump(s);
    return done;
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
}

/// max_concurrent_for_each over a whole range (which must outlive the
/// returned future).
template <typename Range, typename Func>
future<> max_concurrent_for_each(Range& range, std::size_t concurrency, Func&& func) noexcept {
  return max_concurrent_for_each(std::begin(range), std::end(range), concurrency,
                                 std::forward<Func>(func));
}

}  // namespace reef
