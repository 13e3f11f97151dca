// The sharded allocator against glibc's malloc, side by side in one run.
//
//   tools/bazel run //memory:allocator_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// "reef" calls the allocator directly on a thread bound to a shard (what
// malloc does in a program that links //memory:malloc_override); "glibc"
// calls glibc's malloc (this binary does not link the override).
//   pair/<size>:   malloc + free of one object, again and again;
//   batch/<n>:     n allocations of 64 bytes, then n frees;
//   cross_free:    10000 objects allocated on one thread and freed on
//                  another (a shard, for reef), timed on the freeing side,
//                  plus, for reef, the owner taking them back.
#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "memory/allocator.h"

namespace reef::memory {
namespace {

struct reef_api {
  static void* allocate(std::size_t n) { return memory::allocate(n); }
  static void release(void* p) { memory::free(p); }
};
struct glibc_api {
  static void* allocate(std::size_t n) { return std::malloc(n); }
  static void release(void* p) { std::free(p); }
};

// Binds the benchmark thread to shard 0 for the reef variants.
template <typename Api>
struct bind_for {
  bind_for() {
    if constexpr (std::is_same_v<Api, reef_api>) bind_this_thread_to_shard(0);
  }
  ~bind_for() {
    if constexpr (std::is_same_v<Api, reef_api>) unbind_this_thread();
  }
};

template <typename Api>
void pair(benchmark::State& state) {
  bind_for<Api> bound;
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = Api::allocate(size);
    benchmark::DoNotOptimize(p);
    Api::release(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_TEMPLATE(pair, reef_api)->Arg(16)->Arg(64)->Arg(256)->Arg(4096);
BENCHMARK_TEMPLATE(pair, glibc_api)->Arg(16)->Arg(64)->Arg(256)->Arg(4096);

template <typename Api>
void batch(benchmark::State& state) {
  bind_for<Api> bound;
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<void*> live(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) live[i] = Api::allocate(64);
    benchmark::DoNotOptimize(live.data());
    for (std::size_t i = 0; i < n; ++i) Api::release(live[i]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK_TEMPLATE(batch, reef_api)->Arg(1000);
BENCHMARK_TEMPLATE(batch, glibc_api)->Arg(1000);

// A thread that runs one job at a time for the benchmark thread.
class helper_thread {
 public:
  explicit helper_thread(int shard) : _thread([this, shard] { loop(shard); }) {}
  ~helper_thread() {
    run([this] { _stop = true; });
    _thread.join();
  }
  void run(std::function<void()> job) {
    std::unique_lock lock(_mutex);
    _job = std::move(job);
    _ready.notify_all();
    _done.wait(lock, [this] { return !_job; });
  }

 private:
  void loop(int shard) {
    if (shard >= 0) bind_this_thread_to_shard(static_cast<unsigned>(shard));
    std::unique_lock lock(_mutex);
    while (!_stop) {
      _ready.wait(lock, [this] { return static_cast<bool>(_job); });
      _job();
      _job = nullptr;
      _done.notify_all();
    }
    if (shard >= 0) unbind_this_thread();
  }

  std::mutex _mutex;
  std::condition_variable _ready;
  std::condition_variable _done;
  std::function<void()> _job;
  bool _stop = false;
  std::thread _thread;
};

template <typename Api>
void cross_free(benchmark::State& state) {
  constexpr bool is_reef = std::is_same_v<Api, reef_api>;
  bind_for<Api> bound;
  helper_thread other(is_reef ? 1 : -1);
  constexpr std::size_t n = 10000;
  std::vector<void*> objects(n);
  for (auto _ : state) {
    for (auto& p : objects) p = Api::allocate(64);
    double seconds = 0;
    other.run([&] {
      auto start = std::chrono::steady_clock::now();
      for (void* p : objects) Api::release(p);
      if constexpr (is_reef) flush_remote_frees();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
    if constexpr (is_reef) {
      auto start = std::chrono::steady_clock::now();
      drain_remote_frees();
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}
BENCHMARK_TEMPLATE(cross_free, reef_api)->UseManualTime();
BENCHMARK_TEMPLATE(cross_free, glibc_api)->UseManualTime();

}  // namespace
}  // namespace reef::memory

BENCHMARK_MAIN();
