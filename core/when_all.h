// Waiting for several futures.
//
//   when_all(f1, f2, ...)          -> future<std::tuple<future<T1>, future<T2>, ...>>
//   when_all(begin, end)           -> future<std::vector<future<T>>>
//   when_all_succeed(f1, f2, ...)  -> future<std::tuple<T1, T2, ...>> (void ones left
//                                     out; future<> if all are void)
//   when_all_succeed(begin, end)   -> future<std::vector<T>> (future<> for void)
//
// when_all() never fails: each input comes back, ready, value or exception.
// when_all_succeed() fails with the first failed input's exception (in
// argument order) once all are ready; the other failures are dropped. Ready
// inputs cost nothing; each unready one costs one continuation.
// Thread rules: the calling thread's futures only.
#pragma once

#include <cstddef>
#include <exception>
#include <iterator>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/future.h"

namespace reef {

namespace core_internal {

template <std::size_t I, typename... T>
future<std::tuple<future<T>...>> when_all_from(std::tuple<future<T>...>&& futures) noexcept {
  if constexpr (I == sizeof...(T)) {
    return make_ready_future<std::tuple<future<T>...>>(std::move(futures));
  } else {
    auto& f = std::get<I>(futures);
    if (f.available()) return when_all_from<I + 1, T...>(std::move(futures));
    auto waiting = std::move(f);
    return waiting.then_wrapped(
        [futures = std::move(futures)](auto&& done) mutable {
          std::get<I>(futures) = std::move(done);
          return when_all_from<I + 1, T...>(std::move(futures));
        });
  }
}

template <typename T>
future<std::vector<future<T>>> when_all_from(std::vector<future<T>>&& futures,
                                             std::size_t i) noexcept {
  for (; i < futures.size(); ++i) {
    if (futures[i].available()) continue;
    auto waiting = std::move(futures[i]);
    return waiting.then_wrapped([futures = std::move(futures), i](future<T>&& done) mutable {
      futures[i] = std::move(done);
      return when_all_from<T>(std::move(futures), i + 1);
    });
  }
  return make_ready_future<std::vector<future<T>>>(std::move(futures));
}

// The value of a ready future as a tuple: empty for future<>.
template <typename T>
std::tuple<T> value_tuple(future<T>& f) {
  return std::tuple<T>(f.get());
}
inline std::tuple<> value_tuple(future<>& f) {
  f.get();
  return {};
}

template <typename... T>
using succeed_tuple_t = decltype(std::tuple_cat(value_tuple(std::declval<future<T>&>())...));

}  // namespace core_internal

/// Resolves when every argument has, with all of them, ready.
template <typename... T>
future<std::tuple<future<T>...>> when_all(future<T>&&... futures) noexcept {
  return core_internal::when_all_from<0, T...>(std::tuple<future<T>...>(std::move(futures)...));
}

/// Resolves when every future in [begin, end) has, with all of them, ready,
/// in order. The futures are moved out of the range.
template <typename Iterator>
  requires(!is_future_v<Iterator>)
auto when_all(Iterator begin, Iterator end) noexcept
    -> future<std::vector<typename std::iterator_traits<Iterator>::value_type>> {
  using fut = typename std::iterator_traits<Iterator>::value_type;
  using T = typename fut::value_type;
  std::vector<future<T>> futures;
  try {
    futures.reserve(static_cast<std::size_t>(std::distance(begin, end)));
    for (; begin != end; ++begin) futures.push_back(std::move(*begin));
  } catch (...) {
    return make_exception_future<std::vector<future<T>>>(std::current_exception());
  }
  return core_internal::when_all_from<T>(std::move(futures), 0);
}

/// Resolves with the values of all arguments, or fails with the first
/// failure (in argument order) once all are ready.
template <typename... T>
auto when_all_succeed(future<T>&&... futures) noexcept {
  using values = core_internal::succeed_tuple_t<T...>;
  using result = std::conditional_t<std::tuple_size_v<values> == 0, void, values>;
  return when_all(std::move(futures)...).then([](std::tuple<future<T>...>&& all) {
    std::exception_ptr first;
    std::apply(
        [&](auto&... f) {
          ((f.failed() ? (first ? f.ignore_ready_future() : void(first = f.get_exception()))
                       : void()),
           ...);
        },
        all);
    if (first) {
      std::apply([](auto&... f) { (f.ignore_ready_future(), ...); }, all);
      return make_exception_future<result>(std::move(first));
    }
    if constexpr (std::is_void_v<result>) {
      std::apply([](auto&... f) { (f.get(), ...); }, all);
      return make_ready_future<>();
    } else {
      return make_ready_future<result>(
          std::apply([](auto&... f) { return std::tuple_cat(core_internal::value_tuple(f)...); }, all));
    }
  });
}

/// Resolves with the values of all futures in [begin, end), in order, or
/// fails with the first failure once all are ready.
template <typename Iterator>
  requires(!is_future_v<Iterator>)
auto when_all_succeed(Iterator begin, Iterator end) noexcept {
  using fut = typename std::iterator_traits<Iterator>::value_type;
  using T = typename fut::value_type;
  using result = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
  return when_all(begin, end).then([](std::vector<future<T>>&& all) {
    std::exception_ptr first;
    for (auto& f : all) {
      if (!f.failed()) continue;
      if (!first) {
        first = f.get_exception();
      } else {
        f.ignore_ready_future();
      }
    }
    if (first) {
      for (auto& f : all) f.ignore_ready_future();
      return make_exception_future<result>(std::move(first));
    }
    if constexpr (std::is_void_v<T>) {
      for (auto& f : all) f.get();
      return make_ready_future<>();
    } else {
      std::vector<T> values;
      values.reserve(all.size());
      for (auto& f : all) values.push_back(f.get());
      return make_ready_future<result>(std::move(values));
    }
  });
}

}  // namespace reef
