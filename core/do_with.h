// Keeping objects alive for the duration of an asynchronous operation.
//
//   return do_with(std::string("key"), buffer(), [](std::string& key, buffer& buf) {
//     return read_into(key, buf);   // key and buf live until this resolves
//   });
//
// Thread rules: the calling thread; the objects are moved to the heap,
// passed by reference to the function, and destroyed on this thread when
// the function's future resolves.
#pragma once

#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/future.h"

namespace reef {

namespace internal {

template <typename Args, std::size_t... I>
auto do_with_impl(Args&& args, std::index_sequence<I...>) noexcept {
  constexpr std::size_t n = sizeof...(I);
  auto& func = std::get<n>(args);
  using values = std::tuple<std::decay_t<std::tuple_element_t<I, std::decay_t<Args>>>...>;
  using result = futurize_t<std::invoke_result_t<decltype(func), std::tuple_element_t<I, values>&...>>;
  std::unique_ptr<values> held;
  try {
    held = std::make_unique<values>(std::forward<std::tuple_element_t<I, std::decay_t<Args>>>(
        std::get<I>(args))...);
  } catch (...) {
    return futurize<result>::from_exception(std::current_exception());
  }
  result f = futurize_invoke(func, std::get<I>(*held)...);
  if (f.available()) return f;
  return f.finally([held = std::move(held)] {});
}

}  // namespace internal

/// Moves `values...` to the heap, calls `func(values&...)` (the last
/// argument), and destroys them once its future resolves; returns that
/// future.
template <typename T1, typename... More>
auto do_with(T1&& value, More&&... more) noexcept {
  static_assert(sizeof...(More) >= 1, "do_with(values..., func)");
  return internal::do_with_impl(std::forward_as_tuple(std::forward<T1>(value), std::forward<More>(more)...),
                                std::make_index_sequence<sizeof...(More)>());
}

}  // namespace reef
