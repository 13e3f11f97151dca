// Stackful threads: code that runs on a stack of its own inside the
// reactor, where future::get() may wait for an unready future.
//
//   future<int> f = async([] {
//     int a = read_a().get();      // suspends this thread, not the reactor
//     int b = read_b().get();
//     return a + b;
//   });
//
// A reef::thread is not an OS thread: it runs on the reactor's OS thread,
// cooperatively. It leaves the CPU when it waits in get(), when it calls
// thread::yield(), and at preemption points: get() (even of a ready future)
// and thread::maybe_yield() yield when the task quota is used up.
// Each thread has its own stack (thread_attributes::stack_size, default
// 128 KiB) with a guard page below it, so an overflow faults instead of
// corrupting memory.
//
// Thread rules: created, run and joined on one reactor thread; the
// function is moved onto the new thread's state, runs there, and is
// destroyed when it returns, before the join future resolves.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/function.h"
#include "core/future.h"
#include "core/task.h"

namespace reef {

/// How a thread is created.
struct thread_attributes {
  /// The largest stack_size accepted (std::invalid_argument beyond).
  static constexpr std::size_t stack_size_max = std::size_t{1} << 30;
  /// Usable stack, rounded up to whole pages; a guard page comes on top.
  std::size_t stack_size = 128 * 1024;
};

namespace core_internal {
class thread_context;
}  // namespace core_internal

/// A stackful thread running a `void()` function; see the file comment.
class thread {
 public:
  thread() noexcept = default;

  /// Starts `func` on a new thread (it runs once the reactor gets to it).
  /// Throws std::system_error if no stack can be mapped,
  /// std::invalid_argument for a stack_size above stack_size_max.
  template <typename Func>
  explicit thread(Func&& func) : thread(thread_attributes(), std::forward<Func>(func)) {}

  template <typename Func>
  thread(thread_attributes attributes, Func&& func)
      : _context(create(attributes, noncopyable_function<void()>(std::forward<Func>(func)))) {}

  thread(thread&& o) noexcept : _context(std::exchange(o._context, nullptr)) {}
  thread& operator=(thread&& o) noexcept;
  /// REQUIRES: the function has returned (its join() future resolved), or
  /// the thread is empty (default-constructed or moved from).
  ~thread();

  /// Resolves when the function has returned (or failed, with its
  /// exception). Call once.
  future<> join();

  /// From inside a thread: lets the reactor run other work, then resumes.
  static void yield();
  /// From inside a thread: whether the task quota is used up.
  static bool should_yield() noexcept { return need_preempt(); }
  /// From inside a thread: yield() if should_yield().
  static void maybe_yield() {
    if (should_yield()) yield();
  }
  /// Whether the caller runs inside a reef::thread.
  static bool running_in_thread() noexcept;

 private:
  // Creates the context and schedules its start.
  static core_internal::thread_context* create(thread_attributes attributes,
                                          noncopyable_function<void()> func);

  core_internal::thread_context* _context = nullptr;  // owned
};

/// Runs `func(args...)` on a new thread and returns its result as a
/// future (flattened if func returns a future). Fails, rather than throws,
/// if the thread cannot be created.
template <typename Func, typename... Args>
futurize_t<std::invoke_result_t<Func, Args...>> async(thread_attributes attributes, Func&& func,
                                                      Args&&... args) noexcept {
  using R = std::invoke_result_t<Func, Args...>;
  using result = futurize_t<R>;
  using value = typename futurize<R>::value_type;
  struct work {
    std::decay_t<Func> func;
    std::tuple<std::decay_t<Args>...> args;
    promise<value> done;
    thread th;
  };
  try {
    auto w = std::make_unique<work>(
        work{std::forward<Func>(func), std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...),
             promise<value>(), thread()});
    result f = w->done.get_future();
    work* raw = w.get();
    w->th = thread(attributes, [raw] {
      futurize<R>::satisfy_with_result_of(raw->done, [raw]() -> decltype(auto) {
        return std::apply(raw->func, std::move(raw->args));
      });
    });
    // The work (and its finished thread) is freed once the thread is done.
    (void)raw->th.join().then_wrapped([w = std::move(w)](future<>&& joined) {
      joined.ignore_ready_future();  // the function's own failure went to `done`
    });
    return f;
  } catch (...) {
    return futurize<R>::from_exception(std::current_exception());
  }
}

/// async() with the default attributes.
template <typename Func, typename... Args>
futurize_t<std::invoke_result_t<Func, Args...>> async(Func&& func, Args&&... args) noexcept {
  return async(thread_attributes(), std::forward<Func>(func), std::forward<Args>(args)...);
}

}  // namespace reef
