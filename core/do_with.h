// Keeping objects alive for the duration of an asynchronous operation.
//
//   return do_with(std::string("key"), buffer(), [](std::string& key, buffer& buf) {
//     return read_into(key, buf);   // key and buf live until this resolves
//   });
//
// Thread rules: the calling thread; the objects and the function are moved
// to the heap, the objects passed by reference to the function, and all
// destroyed on this thread when the function's future resolves.
#pragma once

#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/future.h"

namespace reef {

namespace core_internal {

// The values and the function, together on the heap: the function too must
// live until its future resolves (a coroutine lambda's frame refers to it).
template <typename Args, std::size_t... I>
auto do_with_impl(Args&& args, std::index_sequence<I...>) noexcept {
  constexpr std::size_t n = sizeof...(I);
  using arg_types = std::decay_t<Args>;
  using func_type = std::decay_t<std::tuple_element_t<n, arg_types>>;
  using held_type = std::tuple<std::decay_t<std::tuple_element_t<I, arg_types>>..., func_type>;
  using result = futurize_t<
      std::invoke_result_t<func_type&, std::tuple_element_t<I, held_type>&...>>;
  std::unique_ptr<held_type> held;
  try {
    held = std::make_unique<held_type>(
        std::forward<std::tuple_element_t<I, arg_types>>(std::get<I>(args))...,
        std::forward<std::tuple_element_t<n, arg_types>>(std::get<n>(args)));
  } catch (...) {
    return futurize<result>::from_exception(std::current_exception());
  }
  result f = futurize_invoke(std::get<n>(*held), std::get<I>(*held)...);
  if (f.available()) return f;
  return f.finally([held = std::move(held)] {});
}

}  // namespace core_internal

/// Moves `values...` and `func` (the last argument) to the heap, calls
/// `func(values&...)`, and destroys them all once its future resolves;
/// returns that future.
template <typename T1, typename... More>
auto do_with(T1&& value, More&&... more) noexcept {
  static_assert(sizeof...(More) >= 1, "do_with(values..., func)");
  return core_internal::do_with_impl(std::forward_as_tuple(std::forward<T1>(value), std::forward<More>(more)...),
                                std::make_index_sequence<sizeof...(More)>());
}

}  // namespace reef
