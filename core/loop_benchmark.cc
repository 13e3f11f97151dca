// Loops and combinators inside a reactor: parallel_for_each per element,
// ready and suspending, and when_all of 2 and of 100.
//
//   tools/bazel run //core:loop_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "core/loop.h"
#include "core/reactor.h"
#include "core/sleep.h"
#include "core/testing/alloc_counter.h"
#include "core/when_all.h"

namespace reef {
namespace {

// Allocations per element: operator new calls ("heap_allocs") and task
// memory requests ("task_allocs", served mostly by the task memory cache).
struct allocation_count {
  std::uint64_t heap = testing::allocations();
  std::uint64_t tasks = testing::task_allocations();
};

void report(benchmark::State& state, const allocation_count& before, std::int64_t per_iteration) {
  auto ops = static_cast<double>(state.iterations() * per_iteration);
  state.counters["heap_allocs_per_element"] =
      benchmark::Counter(static_cast<double>(testing::allocations() - before.heap) / ops);
  state.counters["task_allocs_per_element"] =
      benchmark::Counter(static_cast<double>(testing::task_allocations() - before.tasks) / ops);
  state.SetItemsProcessed(state.iterations() * per_iteration);
}

void wait_for(future<>& f) {
  if (!f.available()) engine().run_until([&] { return f.available(); });
  f.get();
}

// parallel_for_each whose function returns ready futures.
void parallel_for_each_ready(benchmark::State& state) {
  std::vector<int> range(static_cast<std::size_t>(state.range(0)));
  std::uint64_t sum = 0;
  allocation_count before;
  for (auto _ : state) {
    future<> f = parallel_for_each(range, [&sum](int v) {
      sum += static_cast<std::uint64_t>(v) + 1;
      return make_ready_future<>();
    });
    wait_for(f);
  }
  benchmark::DoNotOptimize(sum);
  report(state, before, state.range(0));
}
BENCHMARK(parallel_for_each_ready)->Arg(100);

// parallel_for_each whose function suspends once (yield()) per element.
void parallel_for_each_suspending(benchmark::State& state) {
  std::vector<int> range(static_cast<std::size_t>(state.range(0)));
  allocation_count before;
  for (auto _ : state) {
    future<> f = parallel_for_each(range, [](int) { return yield(); });
    wait_for(f);
  }
  report(state, before, state.range(0));
}
BENCHMARK(parallel_for_each_suspending)->Arg(100);

// when_all of N ready futures.
void when_all_ready(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<future<int>> futures;
  futures.reserve(n);
  allocation_count before;
  for (auto _ : state) {
    futures.clear();
    for (std::size_t i = 0; i < n; ++i) futures.push_back(make_ready_future<int>(static_cast<int>(i)));
    auto all = when_all(futures.begin(), futures.end());
    benchmark::DoNotOptimize(all.get().size());
  }
  report(state, before, state.range(0));
}
BENCHMARK(when_all_ready)->Arg(2)->Arg(100);

// when_all of N futures resolved after the call.
void when_all_unready(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<promise<int>> promises(n);
  std::vector<future<int>> futures;
  futures.reserve(n);
  allocation_count before;
  for (auto _ : state) {
    futures.clear();
    for (auto& p : promises) {
      p = promise<int>();
      futures.push_back(p.get_future());
    }
    auto all = when_all(futures.begin(), futures.end());
    for (std::size_t i = 0; i < n; ++i) promises[i].set_value(static_cast<int>(i));
    engine().run_until([&] { return all.available(); });
    benchmark::DoNotOptimize(all.get().size());
  }
  report(state, before, state.range(0));
}
BENCHMARK(when_all_unready)->Arg(2)->Arg(100);

// The variadic form, two unready futures.
void when_all_variadic_2(benchmark::State& state) {
  allocation_count before;
  for (auto _ : state) {
    promise<int> a;
    promise<> b;
    auto all = when_all(a.get_future(), b.get_future());
    a.set_value(1);
    b.set_value();
    engine().run_until([&] { return all.available(); });
    benchmark::DoNotOptimize(std::get<0>(all.get()).get());
  }
  report(state, before, 2);
}
BENCHMARK(when_all_variadic_2);

}  // namespace
}  // namespace reef
