// One instance of a service per shard, and ways to reach them.
//
//   sharded<counter> counters;
//   co_await counters.start(100);                  // counter(100) on every shard
//   co_await counters.invoke_on_all([](counter& c) { return c.reset(); });
//   auto total = co_await counters.map_reduce(
//       [](counter& c) { return c.value(); }, 0, std::plus<int>());
//   std::vector<int> each = co_await counters.map([](counter& c) { return c.value(); });
//   co_await counters.stop();                      // stop() on each, then destroy each
//
// Each instance is constructed, used and destroyed on its own shard.
// start() copies its arguments to every shard; wrap one in
// sharded_parameter(f, args...) to have f(args...) evaluated on each shard
// instead. A service that derives from peering_sharded_service<S> can reach
// its peers through container().
//
// Thread rules: start(), stop() and the invoke/map_reduce calls may be made
// from any shard (one at a time for start and stop); local() only on a
// shard that has an instance. The sharded<> object must outlive stop().
#pragma once

#include <exception>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "core/future.h"
#include "core/when_all.h"
#include "smp/smp.h"

namespace reef {

template <typename Service>
class sharded;

/// Lets a service reach the other shards' instances: container() is the
/// sharded<> that holds it.
template <typename Service>
class peering_sharded_service {
 public:
  sharded<Service>& container() noexcept {
    REEF_ASSERT(_container != nullptr);
    return *_container;
  }
  const sharded<Service>& container() const noexcept {
    REEF_ASSERT(_container != nullptr);
    return *_container;
  }

 private:
  template <typename S>
  friend class sharded;
  sharded<Service>* _container = nullptr;
};

/// An argument of sharded<>::start() computed on each shard: func(args...).
template <typename Func, typename... Args>
class sharded_parameter {
 public:
  explicit sharded_parameter(Func func, Args... args)
      : _func(std::move(func)), _args(std::move(args)...) {}
  auto evaluate() const { return std::apply(_func, _args); }

 private:
  Func _func;
  std::tuple<Args...> _args;
};

namespace smp_internal {

template <typename T>
struct is_sharded_parameter : std::false_type {};
template <typename Func, typename... Args>
struct is_sharded_parameter<sharded_parameter<Func, Args...>> : std::true_type {};

template <typename T>
decltype(auto) unwrap_sharded_argument(const T& arg) {
  if constexpr (is_sharded_parameter<T>::value) {
    return arg.evaluate();
  } else {
    return (arg);
  }
}

}  // namespace smp_internal

template <typename Service>
class sharded {
 public:
  sharded() noexcept = default;
  sharded(const sharded&) = delete;
  sharded& operator=(const sharded&) = delete;
  /// REQUIRES: stopped (or never started).
  ~sharded() { REEF_ASSERT(_instances.empty(), "sharded<> destroyed without stop()"); }

  /// Constructs Service(args...) on every shard; a failure stops (and
  /// destroys) the instances already made and fails the future.
  template <typename... Args>
  future<> start(Args&&... args) noexcept {
    REEF_ASSERT(_instances.empty(), "sharded<> started twice");
    try {
      _instances.resize(smp::count);
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
    return smp::invoke_on_all([this, args = std::make_tuple(args...)] {
             std::apply(
                 [this](const auto&... a) {
                   auto service = std::make_unique<Service>(smp_internal::unwrap_sharded_argument(a)...);
                   if constexpr (std::is_base_of_v<peering_sharded_service<Service>, Service>) {
                     static_cast<peering_sharded_service<Service>&>(*service)._container = this;
                   }
                   _instances[this_shard_id()].service = std::move(service);
                 },
                 args);
           })
        .handle_exception([this](std::exception_ptr ex) {
          return stop().then_wrapped([ex](future<>&& stopped) {
            stopped.ignore_ready_future();
            return make_exception_future<>(ex);
          });
        });
  }

  /// Calls stop() (if Service has one) on every instance, then, once all
  /// have stopped, destroys each on its own shard.
  /// Even if some stop() fails, every instance is destroyed on its own
  /// shard; the returned future then fails with one of the failures.
  future<> stop() noexcept {
    if (_instances.empty()) return make_ready_future<>();
    return smp::invoke_on_all([this]() -> future<> {
             Service* s = _instances[this_shard_id()].service.get();
             if (s == nullptr) return make_ready_future<>();
             if constexpr (requires(Service& x) { x.stop(); }) {
               return futurize_invoke([s] { return s->stop(); }).discard_result();
             } else {
               return make_ready_future<>();
             }
           })
        .then_wrapped([this](future<>&& stopped) {
          return smp::invoke_on_all([this] { _instances[this_shard_id()].service.reset(); })
              .then_wrapped([this, stopped = std::move(stopped)](future<>&& destroyed) mutable {
                _instances.clear();
                if (stopped.failed()) {
                  destroyed.ignore_ready_future();
                  return std::move(stopped);
                }
                return std::move(destroyed);
              });
        });
  }

  /// This shard's instance. REQUIRES: started.
  Service& local() noexcept {
    REEF_ASSERT(local_is_initialized(), "sharded<>::local() on a shard with no instance");
    return *_instances[this_shard_id()].service;
  }
  const Service& local() const noexcept {
    REEF_ASSERT(local_is_initialized(), "sharded<>::local() on a shard with no instance");
    return *_instances[this_shard_id()].service;
  }
  bool local_is_initialized() const noexcept {
    return this_shard_id() < _instances.size() && _instances[this_shard_id()].service != nullptr;
  }

  /// Calls a copy of func(Service&) on every shard.
  template <typename Func>
  future<> invoke_on_all(Func func) noexcept {
    return smp::invoke_on_all([this, func]() mutable { return func(local()); });
  }

  /// Calls a copy of func(Service&) on every shard but the calling one.
  template <typename Func>
  future<> invoke_on_others(Func func) noexcept {
    return smp::invoke_on_others([this, func]() mutable { return func(local()); });
  }

  /// Calls a copy of mapper(Service&) on every shard and returns the
  /// results in shard order (a failure of any fails it, once all are done).
  template <typename Mapper>
  auto map(Mapper mapper) noexcept {
    using value = typename futurize<std::invoke_result_t<Mapper&, Service&>>::value_type;
    static_assert(!std::is_void_v<value>, "map() collects values: use invoke_on_all() for void");
    std::vector<future<value>> results;
    try {
      results.reserve(smp::count);
      for (unsigned s = 0; s < smp::count; ++s) {
        results.push_back(smp::submit_to(s, [this, mapper]() mutable { return mapper(local()); }));
      }
    } catch (...) {
      return make_exception_future<std::vector<value>>(std::current_exception());
    }
    return when_all_succeed(results.begin(), results.end());
  }

  /// Calls func(Service&) on `shard` and returns its result here.
  template <typename Func>
  auto invoke_on(unsigned shard, Func func) noexcept {
    return smp::submit_to(shard, [this, func = std::move(func)]() mutable { return func(local()); });
  }

  /// Maps every instance with a copy of mapper(Service&) and folds the
  /// results with reduce(accumulator, result).
  template <typename Mapper, typename Initial, typename Reduce>
  future<Initial> map_reduce(Mapper mapper, Initial initial, Reduce reduce) noexcept {
    return smp::map_reduce([this, mapper]() mutable { return mapper(local()); }, std::move(initial),
                           std::move(reduce));
  }

 private:
  struct entry {
    std::unique_ptr<Service> service;
  };
  std::vector<entry> _instances;  // slot s written only on shard s
};

}  // namespace reef
