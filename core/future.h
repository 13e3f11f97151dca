// Futures and promises: the values of asynchronous computations.
//
// A `promise<T>` is the write end, a `future<T>` the read end; `future<>` is
// `future<void>`. (Several values travel as one `std::tuple`, as in current
// Seastar; there is no variadic `future<T...>`.) Continuations are chained with
// `then()` and friends:
//
//   future<int> f = read_count();
//   future<> g = f.then([](int n) { log(n); });
//
// Cost model (the point of this design):
//   * A ready future holds its result inline; making one and chaining a
//     continuation onto it allocates nothing, and the continuation runs at
//     once unless the thread must yield (need_preempt()).
//   * A continuation on an unready future costs one heap allocation: a task
//     holding the continuation, a slot for the result, and the promise of the
//     returned future. When the promise is fulfilled, that task is scheduled.
//
// The promise and its future point at each other while both live and are
// unresolved; moving either fixes the other's pointer. Destroying an
// unfulfilled promise leaves `broken_promise` in its future. Destroying a
// future whose exception nobody looked at logs a warning (once per lost
// exception), because the failure would otherwise vanish.
//
// Running out of memory for a continuation is fatal (std::terminate from a
// noexcept function), as in Seastar: there is no way to report it from
// then(), and the task memory cache (core/task.h) makes it rare.
//
// Thread rules: a promise, its future and its continuations belong to one
// thread (shard); continuations run on that thread's scheduler (core/task.h).
// Cross-shard work goes through smp's queues, never by sharing a promise.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "core/task.h"

namespace reef {

template <typename T = void>
class future;
template <typename T = void>
class promise;

/// The exception a future holds when its promise was destroyed unfulfilled.
class broken_promise : public std::logic_error {
 public:
  broken_promise();
};

template <typename T>
struct is_future : std::false_type {};
template <typename T>
struct is_future<future<T>> : std::true_type {};
template <typename T>
inline constexpr bool is_future_v = is_future<T>::value;

template <typename T>
struct futurize;

/// `future<T>` for a plain `T`, `future<T>` itself for a future.
template <typename T>
using futurize_t = typename futurize<T>::type;

namespace core_internal {

class future_access;

/// Stands in for the value of a `future<>`.
struct void_value {};

template <typename T>
using stored_t = std::conditional_t<std::is_void_v<T>, void_value, T>;

/// Logs (once per call) that a failed future was destroyed unobserved.
void report_failed_future(const std::exception_ptr& ex) noexcept;

/// How many failed futures were destroyed unobserved on this thread.
std::size_t failed_futures_ignored() noexcept;

/// The states of a future's result slot:
///   pending   - no result yet; a promise will write one.
///   value     - holds a value.
///   exception - holds an exception not yet looked at; destroying the slot
///               in this state reports the exception (see above).
///   empty     - moved from, or the result was taken.
enum class state_kind : unsigned char { empty, pending, value, exception };

struct ready_tag {};
struct exception_tag {};

template <typename T>
class future_state {
  using stored = stored_t<T>;
  static_assert(std::is_nothrow_move_constructible_v<stored>,
                "future<T> requires T to be nothrow move constructible");
  static_assert(std::is_nothrow_destructible_v<stored>,
                "future<T> requires T to be nothrow destructible");

 public:
  future_state() noexcept : _kind(state_kind::pending) {}

  template <typename... A>
  explicit future_state(ready_tag, A&&... a) : _kind(state_kind::value) {
    new (&_value) stored(std::forward<A>(a)...);
  }

  future_state(exception_tag, std::exception_ptr&& ex) noexcept : _kind(state_kind::exception) {
    new (&_exception) std::exception_ptr(std::move(ex));
  }

  future_state(future_state&& o) noexcept : _kind(o._kind) { take_from(o); }

  future_state& operator=(future_state&& o) noexcept {
    if (this != &o) {
      destroy();
      _kind = o._kind;
      take_from(o);
    }
    return *this;
  }

  ~future_state() { destroy(); }

  bool available() const noexcept {
    return _kind == state_kind::value || _kind == state_kind::exception;
  }
  bool failed() const noexcept { return _kind == state_kind::exception; }
  bool pending() const noexcept { return _kind == state_kind::pending; }
  bool empty() const noexcept { return _kind == state_kind::empty; }

  template <typename... A>
  void set_value(A&&... a) {
    REEF_ASSERT(_kind == state_kind::pending, "a promise was fulfilled twice");
    new (&_value) stored(std::forward<A>(a)...);
    _kind = state_kind::value;
  }

  void set_exception(std::exception_ptr&& ex) noexcept {
    REEF_ASSERT(_kind == state_kind::pending, "a promise was fulfilled twice");
    new (&_exception) std::exception_ptr(std::move(ex));
    _kind = state_kind::exception;
  }

  /// REQUIRES: the state holds a value.
  stored take_value() noexcept {
    REEF_DEBUG_ASSERT(_kind == state_kind::value);
    stored v(std::move(_value));
    _value.~stored();
    _kind = state_kind::empty;
    return v;
  }

  /// REQUIRES: the state holds an exception. The exception counts as seen.
  std::exception_ptr take_exception() noexcept {
    REEF_DEBUG_ASSERT(_kind == state_kind::exception);
    std::exception_ptr ex(std::move(_exception));
    _exception.~exception_ptr();
    _kind = state_kind::empty;
    return ex;
  }

  /// A pending slot whose promise now writes elsewhere: nothing will come.
  void detach() noexcept {
    REEF_DEBUG_ASSERT(_kind == state_kind::pending);
    _kind = state_kind::empty;
  }

  /// Drops the result; an exception is dropped without being reported.
  void ignore() noexcept {
    if (_kind == state_kind::exception) {
      _exception.~exception_ptr();
      _kind = state_kind::empty;
    }
  }

 private:
  void take_from(future_state& o) noexcept {
    if (_kind == state_kind::value) {
      new (&_value) stored(std::move(o._value));
      o._value.~stored();
      o._kind = state_kind::empty;
    } else if (_kind == state_kind::exception) {
      new (&_exception) std::exception_ptr(std::move(o._exception));
      o._exception.~exception_ptr();
      o._kind = state_kind::empty;
    }
  }

  void destroy() noexcept {
    if (_kind == state_kind::value) {
      _value.~stored();
    } else if (_kind == state_kind::exception) {
      report_failed_future(_exception);
      _exception.~exception_ptr();
    }
  }

  state_kind _kind;
  union {
    stored _value;
    std::exception_ptr _exception;
  };
};

/// What `then(f)` calls `f` with: the value, or nothing for `future<>`.
template <typename F, typename T>
struct then_result {
  using type = std::invoke_result_t<F, T&&>;
};
template <typename F>
struct then_result<F, void> {
  using type = std::invoke_result_t<F>;
};
template <typename F, typename T>
using then_result_t = typename then_result<F, T>::type;

template <typename T, typename F>
decltype(auto) invoke_with_value(F& f, future_state<T>& state) {
  if constexpr (std::is_void_v<T>) {
    state.take_value();
    return std::invoke(f);
  } else {
    return std::invoke(f, state.take_value());
  }
}

/// The one allocation of a continuation on an unready future: the result
/// slot the promise writes into, the continuation, and the promise of the
/// future the continuation returns. Run once, then deleted.
template <typename T, typename Result, typename Func, typename Body>
class continuation final : public task {
 public:
  template <typename F>
  explicit continuation(F&& f) : _func(std::forward<F>(f)) {}

  void run_and_dispose() noexcept override {
    Body::run(_result, _func, _state);
    delete this;
  }

  future_state<T> _state;
  promise<Result> _result;
  Func _func;
};

// How then() runs its function once the input is ready.
struct then_body {
  template <typename R, typename F, typename T>
  static void run(promise<R>& pr, F& f, future_state<T>& state) noexcept;
};

// How then_wrapped() runs its function once the input is ready.
struct then_wrapped_body {
  template <typename R, typename F, typename T>
  static void run(promise<R>& pr, F& f, future_state<T>& state) noexcept;
};

}  // namespace core_internal

/// The write end of a future. See the file comment for the link between the
/// two. A promise is used on one thread; set_value/set_exception may be
/// called at most once, before or after get_future().
template <typename T>
class promise {
 public:
  promise() noexcept = default;

  promise(promise&& o) noexcept
      : _future(o._future),
        _state(o._state),
        _task(o._task),
        _future_taken(o._future_taken),
        _local(std::move(o._local)) {
    if (_state == &o._local) _state = &_local;
    if (_future != nullptr) _future->_promise = this;
    o._future = nullptr;
    o._state = nullptr;
    o._task = nullptr;
  }

  promise& operator=(promise&& o) noexcept {
    if (this != &o) {
      this->~promise();
      new (this) promise(std::move(o));
    }
    return *this;
  }

  promise(const promise&) = delete;
  promise& operator=(const promise&) = delete;

  /// Leaves broken_promise in the future if the promise was not fulfilled
  /// and somebody still waits for it.
  ~promise() { abandon(); }

  /// The future this promise fulfills.
  /// REQUIRES: called at most once.
  future<T> get_future() noexcept;

  /// Fulfills the future with a value (none for `promise<>`).
  template <typename... A>
  void set_value(A&&... a) noexcept(std::is_nothrow_constructible_v<core_internal::stored_t<T>, A...>) {
    if (_state == nullptr) return;  // the future is gone: nobody to tell
    _state->set_value(std::forward<A>(a)...);
    resolved();
  }

  /// Fulfills the future with an exception.
  void set_exception(std::exception_ptr ex) noexcept {
    if (_state == nullptr) return;
    _state->set_exception(std::move(ex));
    resolved();
  }

  /// Fulfills the future with a copy of `e` as its exception.
  template <typename E, typename = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
  void set_exception(E&& e) noexcept {
    set_exception(std::make_exception_ptr(std::forward<E>(e)));
  }

 private:
  template <typename U>
  friend class future;

  // Moves a ready result into wherever the future's result goes.
  void set_state(core_internal::future_state<T>&& st) noexcept {
    if (_state == nullptr) {
      st.ignore();  // nobody waits; dropping is the caller's intent
      return;
    }
    *_state = std::move(st);
    resolved();
  }

  void resolved() noexcept {
    if (_state == &_local) return;  // get_future() will find it here
    if (_future != nullptr) {
      _future->_promise = nullptr;
      _future = nullptr;
    }
    _state = nullptr;
    if (_task != nullptr) {
      task* t = _task;
      _task = nullptr;
      schedule(t);
    }
  }

  void abandon() noexcept;

  // The future while it exists, is unresolved and has no continuation.
  future<T>* _future = nullptr;
  // Where the result goes: _local before get_future(), then the future's
  // slot or its continuation's; nullptr once nobody can receive it.
  core_internal::future_state<T>* _state = &_local;
  // The continuation (or coroutine, or thread) to schedule when fulfilled.
  task* _task = nullptr;
  bool _future_taken = false;
  core_internal::future_state<T> _local;
};

/// The read end of a promise. See the file comment.
template <typename T>
class [[nodiscard]] future {
 public:
  using value_type = T;
  using promise_type = promise<T>;

  // Internal constructors (the tags live in reef::core_internal): use
  // make_ready_future() and make_exception_future().
  template <typename... A>
  explicit future(core_internal::ready_tag tag, A&&... a) : _state(tag, std::forward<A>(a)...) {}
  explicit future(core_internal::exception_tag tag, std::exception_ptr&& ex) noexcept
      : _state(tag, std::move(ex)) {}
  explicit future(core_internal::future_state<T>&& st) noexcept : _state(std::move(st)) {}

  future(future&& o) noexcept : _promise(o._promise), _state(std::move(o._state)) {
    if (_promise != nullptr) {
      _promise->_future = this;
      _promise->_state = &_state;
      o._promise = nullptr;
    }
  }

  future& operator=(future&& o) noexcept {
    if (this != &o) {
      this->~future();
      new (this) future(std::move(o));
    }
    return *this;
  }

  future(const future&) = delete;
  future& operator=(const future&) = delete;

  ~future() { detach_promise(); }

  /// True when the future holds a value or an exception.
  bool available() const noexcept { return _state.available(); }

  /// True when the future holds an exception.
  bool failed() const noexcept { return _state.failed(); }

  /// False when the future was moved from or its result taken (by get(),
  /// or by a continuation: then() and friends consume the future).
  bool valid() const noexcept { return _promise != nullptr || !_state.empty(); }

  /// The value, or the exception thrown. Consumes the result.
  /// REQUIRES: available(), or running inside a reef::thread (core/thread.h),
  /// where get() blocks the thread until the future is ready.
  T get() {
    wait();
    if (_state.failed()) std::rethrow_exception(_state.take_exception());
    if constexpr (std::is_void_v<T>) {
      _state.take_value();
    } else {
      return _state.take_value();
    }
  }

  /// Blocks the current reef::thread until available(); returns at once when
  /// it already is (inside a reef::thread, after yielding if the task quota
  /// is used up).
  /// REQUIRES: available(), or running inside a reef::thread.
  void wait() noexcept {
    if (available()) {
      // Inside a reef::thread this is a preemption point.
      if (need_preempt() && core_internal::current_blocking_context != nullptr) {
        core_internal::blocking_context* ctx = core_internal::current_blocking_context;
        schedule(ctx->resume_task());
        ctx->suspend();
      }
      return;
    }
    REEF_ASSERT(_promise != nullptr, "get() or wait() on an invalid future (moved from, or its result taken)");
    core_internal::blocking_context* ctx = core_internal::current_blocking_context;
    REEF_ASSERT(ctx != nullptr, "future::get() on an unready future outside a reef::thread");
    _promise->_task = ctx->resume_task();
    ctx->suspend();
    REEF_ASSERT(available());
  }

  /// The exception. The exception counts as seen.
  /// REQUIRES: failed().
  std::exception_ptr get_exception() noexcept {
    REEF_ASSERT(failed(), "get_exception() on a future that did not fail");
    return _state.take_exception();
  }

  /// Drops the result of a ready future; an exception is dropped silently.
  void ignore_ready_future() noexcept { _state.ignore(); }

  /// Chains `f` to run with the value once ready; `f(T&&)`, or `f()` for
  /// `future<>`. Returns the future of `f`'s result (a returned future is
  /// flattened). If this future fails, `f` is skipped and the exception
  /// passes on. An exception thrown by `f` becomes the returned future's.
  /// `f` runs on this thread: at once if the future is ready and the thread
  /// need not yield, otherwise from a task; it is moved into that task and
  /// destroyed after running (or with the task, if never run). So a
  /// coroutine lambda given to then() must not touch its captures after its
  /// first suspension (see core/coroutine.h).
  template <typename F>
  futurize_t<core_internal::then_result_t<F, T>> then(F&& f) noexcept {
    using R = core_internal::then_result_t<F, T>;
    if (available() && !need_preempt()) {
      if (failed()) return futurize<R>::from_exception(_state.take_exception());
      return futurize<R>::invoke([&] { return core_internal::invoke_with_value<T>(f, _state); });
    }
    return schedule_continuation<typename futurize<R>::value_type, core_internal::then_body>(
        std::forward<F>(f));
  }

  /// Chains `f(future<T>&&)` to run once ready, whether it holds a value or
  /// an exception. Returns the future of `f`'s result (flattened). Runs and
  /// is destroyed like then()'s function.
  template <typename F>
  futurize_t<std::invoke_result_t<F, future&&>> then_wrapped(F&& f) noexcept {
    using R = std::invoke_result_t<F, future&&>;
    if (available() && !need_preempt()) {
      return futurize<R>::invoke(std::forward<F>(f), future(std::move(_state)));
    }
    return schedule_continuation<typename futurize<R>::value_type, core_internal::then_wrapped_body>(
        std::forward<F>(f));
  }

  /// On failure, calls `f(std::exception_ptr)`, whose result (a `T`, or a
  /// `future<T>`) replaces the failure; a value passes through untouched.
  template <typename F>
  future<T> handle_exception(F&& f) noexcept;

  /// On a failure of type `E` (deduced from `f(const E&)` or `f(E&)`), calls
  /// `f` and uses its result (`T` or `future<T>`); other failures and values
  /// pass through.
  template <typename F>
  future<T> handle_exception_type(F&& f) noexcept;

  /// Calls `f()` when ready, on either path, and waits for it if it returns
  /// a future. The result is this future's, unless `f` fails: then it is
  /// `f`'s failure (and a failure of this future, now lost, is reported).
  template <typename F>
  future<T> finally(F&& f) noexcept;

  /// The same completion without the value.
  future<> discard_result() noexcept {
    if (available() && !failed()) {
      _state.take_value();
      return future<>(core_internal::ready_tag{});
    }
    return then([](auto&&...) {});
  }

  /// Hands the result (now or when ready) to `pr`, without a continuation
  /// when possible: an unready future's promise then writes straight into
  /// `pr`'s destination.
  void forward_to(promise<T>&& pr) noexcept;

 private:
  template <typename U>
  friend class promise;
  template <typename U>
  friend class future;
  friend class core_internal::future_access;

  explicit future(promise<T>* pr) noexcept : _promise(pr) {
    pr->_future = this;
    pr->_state = &_state;
  }

  void detach_promise() noexcept {
    if (_promise != nullptr) {
      _promise->_future = nullptr;
      _promise->_state = nullptr;
      _promise->_task = nullptr;
      _promise = nullptr;
    }
  }

  template <typename R, typename Body, typename F>
  future<R> schedule_continuation(F&& f) noexcept {
    using cont = core_internal::continuation<T, R, std::decay_t<F>, Body>;
    REEF_ASSERT(valid(), "then() on an invalid future (moved from, or its result taken)");
    auto* c = new cont(std::forward<F>(f));
    future<R> result = c->_result.get_future();
    set_waiter(&c->_state, c);
    return result;
  }

  // Makes `t` run when the result is ready, the result going to `*slot`.
  void set_waiter(core_internal::future_state<T>* slot, task* t) noexcept {
    if (available()) {
      *slot = std::move(_state);
      schedule(t);
      return;
    }
    // The slot may hold a taken result from an earlier wait: make it
    // receptive again.
    if (!slot->pending()) *slot = core_internal::future_state<T>();
    promise<T>* pr = _promise;
    pr->_state = slot;
    pr->_task = t;
    pr->_future = nullptr;
    _promise = nullptr;
    _state.detach();  // the result goes to the slot: this future is spent
  }

  // Makes `t` run when the result is ready, the result staying in this
  // future, which must not move until then (a coroutine's awaiter).
  void set_waiter_in_place(task* t) noexcept {
    REEF_ASSERT(valid(), "co_await of an invalid future (moved from, or its result taken)");
    if (available()) {
      schedule(t);
      return;
    }
    _promise->_task = t;
  }

  promise<T>* _promise = nullptr;
  core_internal::future_state<T> _state;

};

namespace core_internal {

/// Lets Reef's own building blocks (coroutines, loops) wait on a future
/// with a task of their own instead of allocating a continuation.
class future_access {
 public:
  /// Makes `t` run when `f` is ready, the result staying in `f`, which must
  /// not move until then (a coroutine's awaiter).
  template <typename T>
  static void set_waiter_in_place(future<T>& f, task* t) noexcept {
    f.set_waiter_in_place(t);
  }
  /// Makes `t` run when `f` is ready, the result moving to `*slot`; `f` is
  /// left invalid.
  template <typename T>
  static void set_waiter(future<T>& f, future_state<T>* slot, task* t) noexcept {
    f.set_waiter(slot, t);
  }
};

}  // namespace core_internal

/// A ready future holding a value built from `a` (nothing for `future<>`).
template <typename T = void, typename... A>
future<T> make_ready_future(A&&... a) {
  return future<T>(core_internal::ready_tag{}, std::forward<A>(a)...);
}

/// A failed future holding `ex`.
template <typename T = void>
future<T> make_exception_future(std::exception_ptr ex) noexcept {
  return future<T>(core_internal::exception_tag{}, std::move(ex));
}

/// A failed future holding a copy of `e`.
template <typename T = void, typename E,
          typename = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr>>>
future<T> make_exception_future(E&& e) noexcept {
  return make_exception_future<T>(std::make_exception_ptr(std::forward<E>(e)));
}

/// Turns a result type into a future type and a call into a future.
template <typename T>
struct futurize {
  using type = future<T>;
  using value_type = T;

  /// Calls `f(a...)`; its value, or what it threw, as a future.
  template <typename F, typename... A>
  static type invoke(F&& f, A&&... a) noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(std::forward<F>(f), std::forward<A>(a)...);
        return make_ready_future<>();
      } else {
        return make_ready_future<T>(std::invoke(std::forward<F>(f), std::forward<A>(a)...));
      }
    } catch (...) {
      return make_exception_future<T>(std::current_exception());
    }
  }

  static type from_exception(std::exception_ptr&& ex) noexcept {
    return make_exception_future<T>(std::move(ex));
  }

  /// Calls `f()` and hands its result (or exception) to `pr`.
  template <typename F>
  static void satisfy_with_result_of(promise<T>& pr, F&& f) noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        std::invoke(std::forward<F>(f));
        pr.set_value();
      } else {
        pr.set_value(std::invoke(std::forward<F>(f)));
      }
    } catch (...) {
      pr.set_exception(std::current_exception());
    }
  }
};

template <typename T>
struct futurize<future<T>> {
  using type = future<T>;
  using value_type = T;

  template <typename F, typename... A>
  static type invoke(F&& f, A&&... a) noexcept {
    try {
      return std::invoke(std::forward<F>(f), std::forward<A>(a)...);
    } catch (...) {
      return make_exception_future<T>(std::current_exception());
    }
  }

  static type from_exception(std::exception_ptr&& ex) noexcept {
    return make_exception_future<T>(std::move(ex));
  }

  template <typename F>
  static void satisfy_with_result_of(promise<T>& pr, F&& f) noexcept {
    try {
      std::invoke(std::forward<F>(f)).forward_to(std::move(pr));
    } catch (...) {
      pr.set_exception(std::current_exception());
    }
  }
};

/// Calls `f(a...)` and returns its result as a future; an exception thrown
/// by `f` becomes a failed future. Never throws.
template <typename F, typename... A>
auto futurize_invoke(F&& f, A&&... a) noexcept {
  using R = std::invoke_result_t<F, A&&...>;
  return futurize<R>::invoke(std::forward<F>(f), std::forward<A>(a)...);
}

// ---------------------------------------------------------------------------
// Out-of-line members.

template <typename T>
future<T> promise<T>::get_future() noexcept {
  REEF_ASSERT(!_future_taken, "promise::get_future() called twice");
  _future_taken = true;
  if (_local.available()) {
    _state = nullptr;
    return future<T>(std::move(_local));
  }
  return future<T>(this);
}

template <typename T>
void promise<T>::abandon() noexcept {
  if (_state == nullptr || _state == &_local) return;
  if (_state->pending() && (_future != nullptr || _task != nullptr)) {
    _state->set_exception(std::make_exception_ptr(broken_promise()));
    resolved();
    return;
  }
  if (_future != nullptr) _future->_promise = nullptr;
}

template <typename T>
void future<T>::forward_to(promise<T>&& pr) noexcept {
  if (available()) {
    pr.set_state(std::move(_state));
    return;
  }
  REEF_ASSERT(_promise != nullptr, "forward_to() from an invalid future");
  if (pr._state == &pr._local) {
    // pr's future was never taken and, pr being consumed here, never will
    // be: nobody can read the result, so there is nothing to link.
    return;
  }
  // Our promise takes over pr's destination and waiter; pr is left empty.
  promise<T>* ours = _promise;
  _promise = nullptr;
  ours->_future = pr._future;
  if (ours->_future != nullptr) ours->_future->_promise = ours;
  ours->_state = pr._state;
  ours->_task = pr._task;
  pr._future = nullptr;
  pr._state = nullptr;
  pr._task = nullptr;
}

namespace core_internal {

// Finds `E` in `f(const E&)`.
template <typename F>
struct exception_argument : exception_argument<decltype(&F::operator())> {};
template <typename C, typename R, typename A>
struct exception_argument<R (C::*)(A) const> {
  using type = std::decay_t<A>;
};
template <typename C, typename R, typename A>
struct exception_argument<R (C::*)(A)> {
  using type = std::decay_t<A>;
};
template <typename R, typename A>
struct exception_argument<R (*)(A)> {
  using type = std::decay_t<A>;
};

template <typename R, typename F, typename T>
void then_body::run(promise<R>& pr, F& f, future_state<T>& state) noexcept {
  if (state.failed()) {
    pr.set_exception(state.take_exception());
    return;
  }
  using result = then_result_t<F, T>;
  futurize<result>::satisfy_with_result_of(pr, [&]() -> decltype(auto) {
    return invoke_with_value<T>(f, state);
  });
}

template <typename R, typename F, typename T>
void then_wrapped_body::run(promise<R>& pr, F& f, future_state<T>& state) noexcept {
  using result = std::invoke_result_t<F, future<T>&&>;
  futurize<result>::satisfy_with_result_of(
      pr, [&]() -> decltype(auto) { return std::invoke(f, future<T>(std::move(state))); });
}

}  // namespace core_internal

template <typename T>
template <typename F>
future<T> future<T>::handle_exception(F&& f) noexcept {
  return then_wrapped([f = std::forward<F>(f)](future<T>&& fut) mutable -> future<T> {
    if (!fut.failed()) return std::move(fut);
    return futurize_invoke(f, fut.get_exception());
  });
}

template <typename T>
template <typename F>
future<T> future<T>::handle_exception_type(F&& f) noexcept {
  using E = typename core_internal::exception_argument<std::decay_t<F>>::type;
  return then_wrapped([f = std::forward<F>(f)](future<T>&& fut) mutable -> future<T> {
    if (!fut.failed()) return std::move(fut);
    std::exception_ptr ex = fut.get_exception();
    try {
      std::rethrow_exception(ex);
    } catch (E& e) {
      return futurize_invoke(f, e);
    } catch (...) {
      return make_exception_future<T>(std::move(ex));
    }
  });
}

template <typename T>
template <typename F>
future<T> future<T>::finally(F&& f) noexcept {
  return then_wrapped([f = std::forward<F>(f)](future<T>&& fut) mutable -> future<T> {
    auto done = futurize_invoke(f);
    if (done.available()) {
      if (done.failed()) return make_exception_future<T>(done.get_exception());
      done.ignore_ready_future();
      return std::move(fut);
    }
    return done.then_wrapped([fut = std::move(fut)](auto&& d) mutable -> future<T> {
      if (d.failed()) return make_exception_future<T>(d.get_exception());
      d.ignore_ready_future();
      return std::move(fut);
    });
  });
}

}  // namespace reef
