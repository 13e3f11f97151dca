// Waiting for the first of several futures.
//
//   auto r = co_await when_any(begin, end);   // when_any_result<std::vector<future<T>>>
//   use(r.futures[r.index].get());            // the first one ready
//   // the others are still there: await them, or let them go
//
//   auto t = co_await when_any(f1, f2);       // when_any_result<std::tuple<future<T1>, future<T2>>>
//
// The result holds every input's future (in order) and the index of one
// that is ready; the rest may still be pending, and stay valid: await them
// or drop them (an exception nobody looks at is logged, as usual). A ready
// input wins at once, the lowest index first; otherwise the first to
// resolve. No inputs: index 0 of nothing, at once.
//
// Thread rules: the calling thread's futures only.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "core/future.h"
#include "core/lw_shared_ptr.h"

namespace reef {

template <typename Sequence>
struct when_any_result {
  /// One of the futures that were ready first.
  std::size_t index = 0;
  /// Every input, in order (each now a future of the same result).
  Sequence futures;
};

namespace core_internal {

// Shared by the continuations of the inputs: the first to run resolves.
template <typename Sequence>
struct when_any_state {
  promise<when_any_result<Sequence>> done;
  std::optional<Sequence> futures;  // set before any input can resolve
  bool resolved = false;

  void first(std::size_t index) noexcept {
    if (resolved) return;
    resolved = true;
    done.set_value(when_any_result<Sequence>{index, std::move(*futures)});
  }
};

template <typename... T, std::size_t... I>
std::tuple<future<T>...> announcing_all(std::tuple<future<T>...>&& in,
                                        const lw_shared_ptr<when_any_state<std::tuple<future<T>...>>>& st,
                                        std::index_sequence<I...>) noexcept;

// A future of the same result that tells `st` when it is ready.
template <typename T, typename Sequence>
future<T> announcing(future<T>&& f, const lw_shared_ptr<when_any_state<Sequence>>& st, std::size_t index) noexcept {
  return f.then_wrapped([st, index](future<T>&& ready) mutable {
    st->first(index);
    return std::move(ready);
  });
}

}  // namespace core_internal

/// Resolves when the first of [begin, end) has, with all of them and its
/// index (see the file comment). The futures are moved out of the range.
template <typename Iterator>
auto when_any(Iterator begin, Iterator end) noexcept
    -> future<when_any_result<std::vector<typename std::iterator_traits<Iterator>::value_type>>> {
  using future_type = typename std::iterator_traits<Iterator>::value_type;
  using sequence = std::vector<future_type>;
  using result = when_any_result<sequence>;
  try {
    sequence futures;
    for (auto it = begin; it != end; ++it) futures.push_back(std::move(*it));
    for (std::size_t i = 0; i < futures.size(); ++i) {
      if (futures[i].available()) return make_ready_future<result>(result{i, std::move(futures)});
    }
    if (futures.empty()) return make_ready_future<result>(result{0, std::move(futures)});
    auto st = make_lw_shared<core_internal::when_any_state<sequence>>();
    auto out = st->done.get_future();
    sequence announced;
    announced.reserve(futures.size());
    for (std::size_t i = 0; i < futures.size(); ++i) {
      announced.push_back(core_internal::announcing(std::move(futures[i]), st, i));
    }
    st->futures.emplace(std::move(announced));
    return out;
  } catch (...) {
    return make_exception_future<result>(std::current_exception());
  }
}

/// when_any() of the arguments: the result's futures are a tuple.
template <typename... T>
future<when_any_result<std::tuple<future<T>...>>> when_any(future<T>&&... futures) noexcept {
  using sequence = std::tuple<future<T>...>;
  using result = when_any_result<sequence>;
  static_assert(sizeof...(T) > 0, "when_any of nothing");
  std::size_t ready = sizeof...(T);
  std::size_t i = 0;
  ((ready = ready == sizeof...(T) && futures.available() ? i : ready, ++i), ...);
  if (ready != sizeof...(T)) return make_ready_future<result>(result{ready, sequence(std::move(futures)...)});
  try {
    auto st = make_lw_shared<core_internal::when_any_state<sequence>>();
    auto out = st->done.get_future();
    st->futures.emplace(
        core_internal::announcing_all(sequence(std::move(futures)...), st, std::index_sequence_for<T...>()));
    return out;
  } catch (...) {
    return make_exception_future<result>(std::current_exception());
  }
}

namespace core_internal {

template <typename... T, std::size_t... I>
std::tuple<future<T>...> announcing_all(std::tuple<future<T>...>&& in,
                                        const lw_shared_ptr<when_any_state<std::tuple<future<T>...>>>& st,
                                        std::index_sequence<I...>) noexcept {
  return std::tuple<future<T>...>(announcing(std::move(std::get<I>(in)), st, I)...);
}

}  // namespace core_internal

}  // namespace reef
