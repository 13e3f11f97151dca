// Mapping a range through an asynchronous function and reducing the results
// as they arrive.
// Thread rules: the calling thread; callables are moved into shared state,
// called here and destroyed when the returned future resolves.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "core/future.h"
#include "core/loop.h"

namespace reef {

/// Calls `mapper(*it)` (returning R or future<R>) for every element of
/// [begin, end) at once, and folds each result into the accumulator with
/// `reduce(std::move(accumulator), R)` as it arrives (in no set order).
/// Resolves with the accumulator, or fails with a mapper's failure.
template <typename Iterator, typename Sentinel, typename Mapper, typename Initial,
          typename Reduce>
future<Initial> map_reduce(Iterator begin, Sentinel end, Mapper&& mapper, Initial initial,
                           Reduce&& reduce) noexcept {
  struct state {
    Initial accumulator;
    std::decay_t<Mapper> mapper;
    std::decay_t<Reduce> reduce;
  };
  std::shared_ptr<state> st;
  try {
    st = std::make_shared<state>(
        state{std::move(initial), std::forward<Mapper>(mapper), std::forward<Reduce>(reduce)});
  } catch (...) {
    return make_exception_future<Initial>(std::current_exception());
  }
  return parallel_for_each(std::move(begin), std::move(end),
                           [st](auto&& element) {
                             return futurize_invoke(st->mapper, element)
                                 .then([st](auto&& mapped) {
                                   st->accumulator = st->reduce(std::move(st->accumulator),
                                                                std::move(mapped));
                                 });
                           })
      .then([st] { return std::move(st->accumulator); });
}

/// map_reduce over a whole range.
template <typename Range, typename Mapper, typename Initial, typename Reduce>
future<Initial> map_reduce(Range&& range, Mapper&& mapper, Initial initial,
                           Reduce&& reduce) noexcept {
  return map_reduce(std::begin(range), std::end(range), std::forward<Mapper>(mapper),
                    std::move(initial), std::forward<Reduce>(reduce));
}

}  // namespace reef
