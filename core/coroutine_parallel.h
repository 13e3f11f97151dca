// Concurrency inside a coroutine, with the callables kept where the
// coroutine keeps them (in its frame, for as long as the co_await lasts):
//
//   co_await coroutine::parallel_for_each(items, [&](item& i) -> future<> { ... });
//   auto [a, b] = co_await coroutine::all([] { return fetch_a(); }, [] { return fetch_b(); });
//
// parallel_for_each: `func(element)` on every element at once; resolves
// when all have, failing with one of their failures (as
// reef::parallel_for_each, core/loop.h). all: each callable at once;
// resumes with their values as a tuple, void ones left out (as
// when_all_succeed, core/when_all.h), or throws the first failure (in
// argument order) once all are done.
//
// Why not the plain functions: a coroutine lambda given to them is a
// temporary that may die while its coroutine is suspended; these keep each
// callable alive until every one of them has finished.
//
// Thread rules: the calling coroutine's thread.
#pragma once

#include <coroutine>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "core/coroutine.h"
#include "core/future.h"
#include "core/loop.h"
#include "core/when_all.h"

namespace reef::coroutine {

template <typename Func>
class parallel_for_each {
 public:
  template <typename Range, typename F>
  parallel_for_each(Range&& range, F&& func) noexcept
      : _func(std::forward<F>(func)), _awaiter(reef::parallel_for_each(std::forward<Range>(range), _func)) {}
  parallel_for_each(const parallel_for_each&) = delete;
  parallel_for_each& operator=(const parallel_for_each&) = delete;

  bool await_ready() const noexcept { return _awaiter.await_ready(); }
  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) noexcept {
    _awaiter.await_suspend(h);
  }
  void await_resume() { _awaiter.await_resume(); }

 private:
  Func _func;  // before _awaiter: it is called while _awaiter is made
  core_internal::future_awaiter<void> _awaiter;
};

template <typename Range, typename Func>
parallel_for_each(Range&&, Func&&) -> parallel_for_each<std::decay_t<Func>>;

template <typename... Func>
class all {
  using result_future = decltype(when_all_succeed(futurize_invoke(std::declval<Func&>())...));
  using value = typename result_future::value_type;

 public:
  template <typename... F>
  explicit all(F&&... funcs) noexcept
      : _funcs(std::forward<F>(funcs)...), _awaiter(start(std::index_sequence_for<Func...>())) {}
  all(const all&) = delete;
  all& operator=(const all&) = delete;

  bool await_ready() const noexcept { return _awaiter.await_ready(); }
  template <typename Promise>
  void await_suspend(std::coroutine_handle<Promise> h) noexcept {
    _awaiter.await_suspend(h);
  }
  value await_resume() { return _awaiter.await_resume(); }

 private:
  template <std::size_t... I>
  result_future start(std::index_sequence<I...>) noexcept {
    return when_all_succeed(futurize_invoke(std::get<I>(_funcs))...);
  }

  std::tuple<Func...> _funcs;  // before _awaiter: they run while it is made
  core_internal::future_awaiter<value> _awaiter;
};

template <typename... Func>
all(Func&&...) -> all<std::decay_t<Func>...>;

}  // namespace reef::coroutine
