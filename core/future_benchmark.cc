// Futures and coroutines, without a reactor: a FIFO scheduler runs the
// tasks, so the numbers are the futures layer alone. Each benchmark reports
// allocations per step (a counting operator new proves the zeros).
//
//   tools/bazel run //core:future_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>

#include "core/coroutine.h"
#include "core/future.h"
#include "core/internal/task_queue.h"
#include "core/testing/alloc_counter.h"

namespace reef {
namespace {

class fifo_scheduler final : public scheduler {
 public:
  fifo_scheduler() : _previous(set_scheduler(this)) {}
  ~fifo_scheduler() override { set_scheduler(_previous); }
  void schedule(task* t) noexcept override { _tasks.push_back(t); }
  void run() {
    while (!_tasks.empty()) _tasks.pop_front()->run_and_dispose();
  }

 private:
  scheduler* _previous;
  core_internal::task_queue _tasks;  // the reactor's ring: preallocated
};

// Allocations per step: operator new calls ("heap_allocs") and task
// memory requests ("task_allocs", served mostly by the task memory cache).
struct allocation_count {
  std::uint64_t heap = testing::allocations();
  std::uint64_t tasks = testing::task_allocations();
};

void report(benchmark::State& state, const allocation_count& before, std::int64_t steps) {
  auto ops = static_cast<double>(state.iterations() * steps);
  state.counters["heap_allocs_per_step"] =
      benchmark::Counter(static_cast<double>(testing::allocations() - before.heap) / ops);
  state.counters["task_allocs_per_step"] =
      benchmark::Counter(static_cast<double>(testing::task_allocations() - before.tasks) / ops);
  state.SetItemsProcessed(state.iterations() * steps);
}

// then() on a ready future, chains of N: the continuation runs inline.
void then_ready_chain(benchmark::State& state) {
  fifo_scheduler sched;
  const std::int64_t n = state.range(0);
  allocation_count before;
  for (auto _ : state) {
    future<int> f = make_ready_future<int>(0);
    for (std::int64_t i = 0; i < n; ++i) f = f.then([](int v) { return v + 1; });
    benchmark::DoNotOptimize(f.get());
  }
  report(state, before, n);
}
BENCHMARK(then_ready_chain)->Arg(1)->Arg(10)->Arg(100);

// then() on an unready future, fulfilled by set_value: each step allocates
// its continuation, which the promise schedules and the scheduler runs.
void then_unready_chain(benchmark::State& state) {
  fifo_scheduler sched;
  const std::int64_t n = state.range(0);
  allocation_count before;
  for (auto _ : state) {
    promise<int> p;
    future<int> f = p.get_future();
    for (std::int64_t i = 0; i < n; ++i) f = f.then([](int v) { return v + 1; });
    p.set_value(0);
    sched.run();
    benchmark::DoNotOptimize(f.get());
  }
  report(state, before, n);
}
BENCHMARK(then_unready_chain)->Arg(1)->Arg(10)->Arg(100);

future<int> empty_coroutine() { co_return 1; }

// Calling a coroutine that returns at once: one allocation, the frame.
void coroutine_empty(benchmark::State& state) {
  fifo_scheduler sched;
  allocation_count before;
  for (auto _ : state) {
    future<int> f = empty_coroutine();
    benchmark::DoNotOptimize(f.get());
  }
  report(state, before, 1);
}
BENCHMARK(coroutine_empty);

future<int> await_ready() {
  int v = co_await make_ready_future<int>(1);
  co_return v + 1;
}

// co_await of a ready future: does not suspend; the frame is the only
// allocation.
void coroutine_await_ready(benchmark::State& state) {
  fifo_scheduler sched;
  allocation_count before;
  for (auto _ : state) {
    future<int> f = await_ready();
    benchmark::DoNotOptimize(f.get());
  }
  report(state, before, 1);
}
BENCHMARK(coroutine_await_ready);

future<int> await_unready(future<int> in) {
  int v = co_await std::move(in);
  co_return v + 1;
}

// co_await of an unready future: the coroutine suspends, the promise
// schedules it (no allocation beyond its frame), the scheduler resumes it.
void coroutine_await_unready(benchmark::State& state) {
  fifo_scheduler sched;
  allocation_count before;
  for (auto _ : state) {
    promise<int> p;
    future<int> f = await_unready(p.get_future());
    p.set_value(1);
    sched.run();
    benchmark::DoNotOptimize(f.get());
  }
  report(state, before, 1);
}
BENCHMARK(coroutine_await_unready);

}  // namespace
}  // namespace reef

BENCHMARK_MAIN();
