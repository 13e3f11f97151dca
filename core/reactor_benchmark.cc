// The reactor's own costs: running tasks, switching scheduling groups,
// timers, stackful thread switches.
//
//   tools/bazel run //core:reactor_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <memory>
#include <vector>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "core/scheduling_group.h"
#include "core/sleep.h"
#include "core/testing/alloc_counter.h"
#include "core/thread.h"
#include "core/timer.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

// Allocations per op: operator new calls ("heap_allocs") and task
// memory requests ("task_allocs", served mostly by the task memory cache).
struct allocation_count {
  std::uint64_t heap = testing::allocations();
  std::uint64_t tasks = testing::task_allocations();
};

void report(benchmark::State& state, const allocation_count& before, std::int64_t per_iteration) {
  auto ops = static_cast<double>(state.iterations() * per_iteration);
  state.counters["heap_allocs_per_op"] =
      benchmark::Counter(static_cast<double>(testing::allocations() - before.heap) / ops);
  state.counters["task_allocs_per_op"] =
      benchmark::Counter(static_cast<double>(testing::task_allocations() - before.tasks) / ops);
  state.SetItemsProcessed(state.iterations() * per_iteration);
}

// A task that does nothing and is reused, so that only scheduling and
// running are measured.
struct empty_task final : task {
  void run_and_dispose() noexcept override { ++runs; }
  std::uint64_t runs = 0;
};

// Schedules a batch of empty tasks, then lets the reactor run them.
void task_schedule_and_run(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  std::vector<empty_task> tasks(static_cast<std::size_t>(batch));
  allocation_count before;
  for (auto _ : state) {
    for (auto& t : tasks) schedule(&t);
    engine().run_pending_tasks();
  }
  report(state, before, batch);
}
BENCHMARK(task_schedule_and_run)->Arg(1)->Arg(100)->Arg(1000);

// make_task() + run: the same with a heap-allocated lambda task each.
void lambda_task_schedule_and_run(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  std::uint64_t counter = 0;
  allocation_count before;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < batch; ++i) schedule(make_task([&counter] { ++counter; }));
    engine().run_pending_tasks();
  }
  benchmark::DoNotOptimize(counter);
  report(state, before, batch);
}
BENCHMARK(lambda_task_schedule_and_run)->Arg(100);

// A chain of tasks: each schedules the next, which is in `next_group`.
// With two groups that alternate, every task is a switch between groups
// (the reactor picks a group, runs its one task, and picks again); with
// one group the same chain never switches.
struct chain_task final : task {
  explicit chain_task(unsigned group) noexcept : task(group) {}
  void run_and_dispose() noexcept override {
    if (*left > 0) {
      --*left;
      schedule(next);
    }
  }
  chain_task* next = nullptr;
  std::int64_t* left = nullptr;
};

void run_chain(benchmark::State& state, bool alternate) {
  scheduling_group a = create_scheduling_group("bench_a", 1000);
  scheduling_group b = create_scheduling_group("bench_b", 1000);
  chain_task first(a.id()), second(alternate ? b.id() : a.id());
  std::int64_t left = 0;
  first.next = &second;
  second.next = &first;
  first.left = second.left = &left;
  const std::int64_t chain = 1000;
  for (auto _ : state) {
    left = chain - 1;
    schedule(&first);
    engine().run_pending_tasks();
  }
  state.SetItemsProcessed(state.iterations() * chain);
  destroy_scheduling_group(a);
  destroy_scheduling_group(b);
}

// ns per task with every task in another group than the one before.
void scheduling_group_switch(benchmark::State& state) { run_chain(state, true); }
BENCHMARK(scheduling_group_switch);

// The same chain in one group: the difference is the switch.
void scheduling_group_same(benchmark::State& state) { run_chain(state, false); }
BENCHMARK(scheduling_group_same);

// Arming and cancelling a timer, with `n` other timers armed.
void timer_arm_cancel(benchmark::State& state) {
  std::vector<std::unique_ptr<timer<>>> others;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    others.push_back(std::make_unique<timer<>>([] {}));
    others.back()->arm(std::chrono::hours(1) + std::chrono::microseconds(i));
  }
  timer<> t([] {});
  auto when = steady_clock_type::now() + 30min;
  allocation_count before;
  for (auto _ : state) {
    t.arm(when);
    t.cancel();
  }
  report(state, before, 1);
}
BENCHMARK(timer_arm_cancel)->Arg(0)->Arg(1000)->Arg(100000);

// Arming timers that are already due and letting the reactor fire them.
void timer_arm_and_fire(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  std::uint64_t fired = 0;
  std::vector<std::unique_ptr<timer<>>> timers;
  for (std::int64_t i = 0; i < batch; ++i) timers.push_back(std::make_unique<timer<>>([&fired] { ++fired; }));
  allocation_count before;
  for (auto _ : state) {
    auto now = steady_clock_type::now();
    for (auto& t : timers) t->arm(now);
    std::uint64_t want = fired + static_cast<std::uint64_t>(batch);
    engine().run_until([&] { return fired >= want; });
  }
  report(state, before, batch);
}
BENCHMARK(timer_arm_and_fire)->Arg(1)->Arg(100);

// Two reef::threads yielding to each other: each yield switches out to the
// reactor, which switches into the other thread. Reported per switch into a
// thread (what Seastar's thread_context_switch_perf reports).
void thread_context_switch(benchmark::State& state) {
  bool stop = false;
  std::uint64_t switches = 0;
  auto body = [&] {
    while (!stop) {
      ++switches;
      thread::yield();
    }
  };
  thread a(body);
  thread b(body);
  future<> a_done = a.join();
  future<> b_done = b.join();
  std::uint64_t start = switches;
  allocation_count before;
  for (auto _ : state) engine().run_once();  // runs the threads for a task quota
  auto done = static_cast<double>(switches - start);
  state.counters["switches"] = benchmark::Counter(done);
  state.counters["time_per_switch"] =
      benchmark::Counter(done, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["heap_allocs_per_switch"] =
      benchmark::Counter(static_cast<double>(testing::allocations() - before.heap) / done);
  stop = true;
  engine().run_until([&] { return a_done.available() && b_done.available(); });
}
BENCHMARK(thread_context_switch)->UseRealTime();

// The cost of preemption to a busy shard: a thread pinned to one CPU, as
// smp pins a shard, runs a reactor whose task spins and yields at every
// need_preempt() for 200 ms. Reports the preemptions per second and the
// involuntary context switches of the shard's thread per preemption
// (/proc/thread-self/status): what the preemption clock costs it.
void busy_pinned_shard_preemption(benchmark::State& state) {
  std::uint64_t preemptions = 0;
  long switches = 0;
  double seconds = 0;
  for (auto _ : state) {
    std::thread([&] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(sched_getcpu(), &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      reactor r(reactor_options{.task_quota = std::chrono::microseconds(500), .stop_on_sigint_sigterm = false});
      r.run([&]() -> future<> {
        auto involuntary = [] {
          std::ifstream status("/proc/thread-self/status");
          std::string line;
          while (std::getline(status, line)) {
            if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(27));
          }
          return 0L;
        };
        const long before = involuntary();
        const auto start = steady_clock_type::now();
        const auto until = start + 200ms;
        while (steady_clock_type::now() < until) {
          if (need_preempt()) {
            ++preemptions;
            co_await yield();
          }
        }
        switches += involuntary() - before;
        seconds += std::chrono::duration<double>(steady_clock_type::now() - start).count();
      });
    }).join();
  }
  state.counters["preemptions_per_s"] = benchmark::Counter(static_cast<double>(preemptions) / seconds);
  state.counters["involuntary_switches_per_s"] = benchmark::Counter(static_cast<double>(switches) / seconds);
  state.counters["switches_per_preemption"] =
      benchmark::Counter(static_cast<double>(switches) / static_cast<double>(preemptions ? preemptions : 1));
}
BENCHMARK(busy_pinned_shard_preemption)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reef
