// Work from threads that are not shards (a library's callback thread, a
// blocking main loop): alien::submit_to() runs a function on a shard and
// hands its result back through a std::future the foreign thread can wait
// on; alien::run_on() does the same without waiting.
//
// Thread rules: submit_to() and run_on() may be called from any thread that
// is not a shard, while smp::run() runs (afterwards they fail with
// shard_stopped_error). The function is moved to the shard, runs there, and
// is destroyed there when its future resolves. Work the shard has not
// finished when it stops fails with shard_stopped_error: a foreign thread
// waiting on its std::future never hangs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/future.h"
#include "smp/smp.h"

namespace reef {

class reactor;

namespace alien {

class message_queue;

/// One unit of foreign work; run, then freed by itself, on the shard.
class item {
 public:
  virtual ~item() = default;
  /// Runs the work on the shard, whose inbox is `q`; the item frees itself
  /// when it is done.
  virtual void run_and_dispose(message_queue& q) noexcept = 0;
  /// The shard stopped before the work was done: the foreign thread gets
  /// `ex` now. Called on the shard (or, for work never started, where the
  /// inbox closes); the item is freed by the caller if it never started,
  /// by itself otherwise.
  virtual void fail(std::exception_ptr ex) noexcept = 0;
};

/// A shard's inbox for foreign threads: many producers behind a mutex (not a
/// hot path), one consumer, the shard's poller. The inboxes live as long as
/// the process (a foreign thread may hold one while smp stops); one is open
/// while its shard runs.
///
/// Limit: at most `items_max` items wait; a foreign thread pushing beyond
/// that blocks until the shard takes some (it is not a reactor: it may).
class message_queue {
 public:
  static constexpr std::size_t items_max = 65536;

  /// Opens the inbox of `shard`, waking `r`.
  void attach(reactor* r, unsigned shard) noexcept;
  /// Closes it before `r` goes away, on the shard: work still queued, and
  /// work started whose future has not resolved, fail with
  /// shard_stopped_error (the foreign thread's std::future says so rather
  /// than waiting for ever).
  void detach() noexcept;
  /// The shard: `i` started and waits for its future (detach() fails it).
  void started(item* i);
  /// The shard: `i` is done (or failed); forget it.
  void finished(item* i) noexcept;
  /// Any thread: queues `i` and wakes the shard if it sleeps; false (and
  /// `i` dropped) if the inbox is closed.
  bool push(std::unique_ptr<item> i);
  /// The shard: runs what was queued; returns how many.
  std::size_t process() noexcept;
  /// The shard: whether anything waits.
  bool has_work() const noexcept { return _pending.load(std::memory_order_acquire); }

 private:
  std::mutex _mutex;
  std::condition_variable _room;
  std::vector<std::unique_ptr<item>> _items;
  std::atomic<bool> _pending{false};
  reactor* _reactor = nullptr;  // guarded by _mutex; nullptr: closed
  unsigned _shard = 0;          // whose inbox (for the error detach() gives)
  std::vector<item*> _running;  // the shard only: started, future unresolved
};

}  // namespace alien

namespace smp_internal {

/// Shard `shard`'s inbox (valid for the life of the process), or nullptr for
/// a shard number smp can never have.
alien::message_queue* alien_queue(unsigned shard) noexcept;

template <typename Func, typename Value>
class alien_call final : public alien::item {
 public:
  alien_call(Func&& f, std::optional<std::promise<Value>> result)
      : _func(std::move(f)), _result(std::move(result)) {}

  void run_and_dispose(alien::message_queue& q) noexcept override {
    // The callable stays here, unmoved, until its future resolves.
    auto f = futurize_invoke(_func);
    if (f.available()) {
      deliver(std::move(f));
      delete this;
      return;
    }
    try {
      q.started(this);
    } catch (...) {
      fail(std::current_exception());  // cannot be tracked: the caller hears now
    }
    (void)f.then_wrapped([this, &q](future<Value>&& done) {
      q.finished(this);
      deliver(std::move(done));
      delete this;
    });
  }

  void fail(std::exception_ptr ex) noexcept override {
    if (_result && !_delivered) {
      _delivered = true;
      try {
        _result->set_exception(std::move(ex));
      } catch (...) {
      }
    }
  }

 private:
  void deliver(future<Value>&& done) noexcept {
    if (!_result || _delivered) {
      done.ignore_ready_future();
      return;
    }
    _delivered = true;
    try {
      if (done.failed()) {
        _result->set_exception(done.get_exception());
      } else if constexpr (std::is_void_v<Value>) {
        done.get();
        _result->set_value();
      } else {
        _result->set_value(done.get());
      }
    } catch (...) {
    }
  }

  Func _func;
  std::optional<std::promise<Value>> _result;
  bool _delivered = false;  // the foreign thread has its answer (or failure)
};

}  // namespace smp_internal

namespace alien {

/// Runs `func()` on `shard` and returns a std::future of its result (or
/// exception). From a thread that is not a shard only: waiting on the
/// std::future inside a shard would block its reactor.
template <typename Func>
auto submit_to(unsigned shard, Func&& func) {
  using D = std::decay_t<Func>;
  using value = typename futurize<std::invoke_result_t<D&>>::value_type;
  std::promise<value> result;
  std::future<value> out = result.get_future();
  message_queue* q = smp_internal::alien_queue(shard);
  if (q == nullptr) {
    result.set_exception(std::make_exception_ptr(shard_stopped_error(shard)));
    return out;
  }
  auto call = std::make_unique<smp_internal::alien_call<D, value>>(D(std::forward<Func>(func)),
                                                               std::move(result));
  if (!q->push(std::move(call))) {
    // Closed: the call was dropped with its promise; say why instead.
    std::promise<value> refused;
    out = refused.get_future();
    refused.set_exception(std::make_exception_ptr(shard_stopped_error(shard)));
  }
  return out;
}

/// Runs `func()` on `shard` without waiting for it. Throws
/// shard_stopped_error if the shard does not run.
template <typename Func>
void run_on(unsigned shard, Func&& func) {
  using D = std::decay_t<Func>;
  using value = typename futurize<std::invoke_result_t<D&>>::value_type;
  message_queue* q = smp_internal::alien_queue(shard);
  if (q == nullptr ||
      !q->push(std::make_unique<smp_internal::alien_call<D, value>>(D(std::forward<Func>(func)),
                                                                std::nullopt))) {
    throw shard_stopped_error(shard);
  }
}

}  // namespace alien
}  // namespace reef
