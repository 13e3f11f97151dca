// Shards: one reactor per CPU, and messages between them.
//
//   smp::run(options, [] () -> future<int> {      // runs main on shard 0
//     int sum = co_await smp::map_reduce(
//         [] { return this_shard_id(); }, 0u, std::plus<unsigned>());
//     co_await smp::invoke_on_all([] { warm_up_cache(); });
//     co_return 0;
//   });
//
// smp::run() starts one OS thread per selected CPU but the first, pins it,
// and runs a reactor on it; shard 0 is the calling thread. Shards talk only
// through smp::submit_to() and what is built on it: the callable is moved
// once into a message, run on the target shard, and destroyed there when its
// future resolves; its result (or exception) is moved back to the caller's
// shard. Messages from one shard to another run in the order they were
// sent (they start in order; asynchronous ones may finish in any order).
// A message to the caller's own shard runs at once, without a queue.
//
// Shutdown: when main's future resolves, smp::run() waits until no message
// is in flight anywhere (every one sent has been answered; work that keeps
// sending gets a grace period of 100 quiet-check rounds), then refuses new
// messages (they fail with shard_stopped_error), waits until those accepted
// before are answered, and only then stops the other shards and joins their
// threads. No message is lost, and none reaches a stopped shard.
//
// Without smp::run() (a single reactor, as in tests), there is one shard,
// number 0, and submit_to(0, f) runs f locally.
//
// Thread rules: submit_to() and friends are called on a shard; count and
// this_shard_id() may be read anywhere. Results travel between threads, so
// they must not hold pointers to the target shard's memory that the caller
// would use (see foreign_ptr).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/do_with.h"
#include "core/function.h"
#include "core/future.h"
#include "core/loop.h"
#include "core/map_reduce.h"
#include "core/reactor.h"
#include "core/scheduling_group.h"
#include "smp/topology.h"
#include "smp/message_queue.h"

namespace reef {

/// How smp::run() lays out the shards. Each shard's thread owns the
/// allocator arena of its number (memory/allocator.h); what limits those
/// arenas is set with memory::configure() (app_template does, from
/// --memory).
struct smp_options {
  /// One CPU per shard, shard 0 first (see select_cpus). Empty: one
  /// shard on the calling thread.
  std::vector<cpu_info> cpus;
  /// Pin each shard's thread to its CPU.
  bool pin_threads = true;
  /// The options of every shard's reactor (shard_id is set per shard;
  /// only shard 0 may stop on SIGINT/SIGTERM).
  reactor_options reactor;
};

/// What a message to a shard that has stopped (or never ran) fails with.
class shard_stopped_error : public std::runtime_error {
 public:
  explicit shard_stopped_error(unsigned shard)
      : std::runtime_error("shard " + std::to_string(shard) + " is not running") {}
};

namespace smp_internal {

/// The shard of this thread; 0 outside smp::run() (a lone reactor is
/// shard 0 of one).
inline thread_local unsigned this_shard = 0;

/// The queue from shard `from` to shard `to`, or nullptr when smp is not
/// running, or, for a user message (not smp's own), when it is shutting
/// down.
smp_message_queue* queue_between(unsigned from, unsigned to, bool user) noexcept;

/// Counts a user message sent from this shard / answered back to it.
void count_sent() noexcept;
void count_answered() noexcept;

/// An object to be destroyed on the shard that owns it (foreign_ptr's
/// pointee), type-erased.
class remote_destroyer {
 public:
  virtual ~remote_destroyer() = default;

 private:
  friend void destroy_on(unsigned owner, remote_destroyer* d) noexcept;
  friend void drain_deferred_destructions(unsigned shard) noexcept;
  remote_destroyer* _next = nullptr;
};

/// Deletes `d` on shard `owner` and nowhere else: at once when called
/// there; by a message while smp takes users' messages (shutdown waits for
/// it); after that at `owner`'s final drain, on its thread, as it stops;
/// and if that too is over (smp has stopped), never: `d` is leaked,
/// counted and logged.
void destroy_on(unsigned owner, remote_destroyer* d) noexcept;

/// The owner's final drain (smp calls it as each shard stops): deletes what
/// waits for this shard; later arrivals are leaked.
void drain_deferred_destructions(unsigned shard) noexcept;

/// How many objects destroy_on() had to leak, in this process.
std::size_t leaked_remote_objects() noexcept;

// A message carrying a callable: run on the target, result back to the
// sender. Allocated and freed on the sending shard.
template <typename Func>
class async_work_item final : public work_item {
  using futurator = futurize<std::invoke_result_t<Func&>>;
  using value = typename futurator::value_type;

 public:
  async_work_item(Func&& func, bool counted) : _func(std::move(func)), _counted(counted) {}

  future<value> get_future() noexcept { return _result.get_future(); }

  void process(smp_message_queue& queue) noexcept override {
    auto f = futurize_invoke(*_func);
    if (f.available()) {
      finish(std::move(f));
      queue.respond(this);
      return;
    }
    (void)f.then_wrapped([this, &queue](future<value>&& done) {
      finish(std::move(done));
      queue.respond(this);
    });
  }

  void complete() noexcept override {
    if (_counted) count_answered();
    _outcome->forward_to(std::move(_result));
    delete this;
  }

 private:
  // On the target shard: keep the outcome (a ready future travels like the
  // value or exception it holds), destroy the callable there.
  void finish(future<value>&& done) noexcept {
    _outcome.emplace(std::move(done));
    _func.reset();
  }

  std::optional<Func> _func;
  bool _counted;
  promise<value> _result;
  std::optional<future<value>> _outcome;  // ready once finish() ran
};

template <typename Func>
futurize_t<std::invoke_result_t<std::decay_t<Func>&>> submit(unsigned shard, Func&& func,
                                                            bool counted) noexcept {
  using D = std::decay_t<Func>;
  using result = futurize_t<std::invoke_result_t<D&>>;
  if (shard == this_shard) {
    // Kept until its future resolves, like a remote one (a coroutine lambda
    // may use its captures throughout).
    return do_with(D(std::forward<Func>(func)), [](D& f) { return futurize_invoke(f); });
  }
  smp_message_queue* q = queue_between(this_shard, shard, counted);
  if (q == nullptr) {
    return futurize<result>::from_exception(std::make_exception_ptr(shard_stopped_error(shard)));
  }
  async_work_item<D>* item;
  try {
    item = new async_work_item<D>(D(std::forward<Func>(func)), counted);
  } catch (...) {
    return futurize<result>::from_exception(std::current_exception());
  }
  result f = item->get_future();
  try {
    q->submit(item);
  } catch (...) {
    auto ex = std::current_exception();
    delete item;              // leaves broken_promise in f...
    f.ignore_ready_future();  // ...which is not the news
    return futurize<result>::from_exception(std::move(ex));
  }
  if (counted) count_sent();
  return f;
}

}  // namespace smp_internal

/// The shard the caller runs on.
inline unsigned this_shard_id() noexcept { return smp_internal::this_shard; }

class smp {
 public:
  /// The most shards smp::run() starts (the allocator has as many arenas:
  /// memory::max_shards).
  static constexpr unsigned shards_max = 1024;

  /// How many shards run (1 outside smp::run()).
  static inline unsigned count = 1;

  /// Starts the shards, runs `main` on shard 0 (this thread), shuts down
  /// cleanly when main's future resolves, and returns its value (1 if it
  /// failed, after logging). Throws std::system_error if a shard cannot be
  /// started. One smp::run() at a time per process.
  static int run(smp_options options, noncopyable_function<future<int>()> main);

  /// Registers `f` to run on this shard when smp::run() shuts down: once
  /// main's future has resolved and the grace period has passed, while the
  /// shards still take messages and before any stops (a service that polls
  /// on every shard, such as the native network stack, stops here). All
  /// shards run their hooks at the same time; each shard runs its own one
  /// after another, the last registered first; a failure is logged and the
  /// next runs. Outside smp::run() (a lone reactor) hooks never run.
  static void at_shutdown(noncopyable_function<future<>()> f);

  /// Runs `func()` on `shard` and returns its result here. `func` is moved
  /// into the message, called on `shard`, and destroyed there once its
  /// future resolves. Fails with shard_stopped_error if `shard` does not
  /// run, std::invalid_argument if it does not exist.
  template <typename Func>
  static futurize_t<std::invoke_result_t<std::decay_t<Func>&>> submit_to(unsigned shard,
                                                                        Func&& func) noexcept {
    if (shard >= count) {
      using result = futurize_t<std::invoke_result_t<std::decay_t<Func>&>>;
      return futurize<result>::from_exception(std::make_exception_ptr(
          std::invalid_argument("submit_to: no shard " + std::to_string(shard))));
    }
    return smp_internal::submit(shard, std::forward<Func>(func), true);
  }

  /// submit_to(), with `func` run in scheduling group `sg` on `shard`
  /// (core/scheduling_group.h): it and its continuations there get the
  /// group's share of that shard's CPU. The reply's continuations here stay
  /// in the caller's group.
  template <typename Func>
  static futurize_t<std::invoke_result_t<std::decay_t<Func>&>> submit_to(unsigned shard, scheduling_group sg,
                                                                        Func&& func) noexcept {
    using result = futurize_t<std::invoke_result_t<std::decay_t<Func>&>>;
    // The wrapper lives in the message until its future resolves, so the
    // group's task may refer to it.
    auto wrap = [sg](std::decay_t<Func>&& f) {
      return [sg, f = std::move(f)]() mutable {
        return with_scheduling_group(sg, [&f] { return futurize_invoke(f); });
      };
    };
    try {
      return submit_to(shard, wrap(std::decay_t<Func>(std::forward<Func>(func))));
    } catch (...) {  // copying or moving `func`
      return futurize<result>::from_exception(std::current_exception());
    }
  }

  /// Runs a copy of `func()` on every shard; resolves when all are done
  /// (failing with one of their failures, if any).
  template <typename Func>
  static future<> invoke_on_all(Func&& func) noexcept {
    return invoke_on_shards(std::forward<Func>(func), true);
  }

  /// invoke_on_all() except the calling shard.
  template <typename Func>
  static future<> invoke_on_others(Func&& func) noexcept {
    return invoke_on_shards(std::forward<Func>(func), false);
  }

  /// Runs a copy of `mapper()` on every shard and folds the results with
  /// `reduce(accumulator, result)` as they arrive.
  template <typename Mapper, typename Initial, typename Reduce>
  static future<Initial> map_reduce(Mapper mapper, Initial initial, Reduce reduce) noexcept {
    std::vector<unsigned> shards(count);
    std::iota(shards.begin(), shards.end(), 0u);
    return reef::map_reduce(
        shards.begin(), shards.end(), [mapper](unsigned shard) { return submit_to(shard, mapper); },
        std::move(initial), std::move(reduce));
  }

 private:
  template <typename Func>
  static future<> invoke_on_shards(Func&& func, bool include_self) noexcept {
    std::vector<unsigned> shards;
    for (unsigned s = 0; s < count; ++s) {
      if (include_self || s != this_shard_id()) shards.push_back(s);
    }
    return parallel_for_each(shards, [&func](unsigned shard) {
      return submit_to(shard, [func]() mutable { return futurize_invoke(func).discard_result(); });
    });
  }
};

}  // namespace reef
