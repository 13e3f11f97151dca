// The I/O scheduler's own cost, without I/O: nanoseconds per dispatched
// request through the fair queue (queue, pick by virtual time, charge) with
// 1, 4 and 16 classes, and with the disk's token bucket added, on one
// shard and with two shards (threads) drawing on one bucket.
//
//   tools/bazel run //fs:fair_queue_benchmark -- --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
//
// Seastar's fair_queue_perf on this kind of machine: 28.5 µs per 1000
// requests on one shard, 57-63 µs with two.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "fs/io_queue.h"

namespace reef {
namespace {

constexpr int batch = 1000;

std::vector<io_class> make_classes(int n) {
  std::vector<io_class> classes;
  for (int i = 0; i < n; ++i) classes.push_back(io_class::named("bench-" + std::to_string(i), 100 * (i + 1)));
  return classes;
}

// Queue a batch spread over the classes, then dispatch it all.
void fair_queue_alone(benchmark::State& state) {
  auto classes = make_classes(static_cast<int>(state.range(0)));
  std::vector<fair_queue::entry> entries(batch);
  fair_queue q;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      entries[i].class_id = classes[i % classes.size()].id();
      entries[i].cost = 1e-5 + (i & 7) * 1e-6;
      q.push(entries[i]);
    }
    while (auto* e = q.pop()) benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(fair_queue_alone)->Arg(1)->Arg(4)->Arg(16);

// The same, and each request takes its tokens from a disk's bucket (a model
// fast enough that none waits): what io_queue does per request.
io_group& shared_disk() {
  static io_group* g = new io_group(disk_model{1e12, 1e15, 1e12, 1e15});
  return *g;
}

void fair_queue_and_bucket(benchmark::State& state) {
  auto classes = make_classes(4);
  std::vector<fair_queue::entry> entries(batch);
  fair_queue q;
  io_group& disk = shared_disk();
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      entries[i].class_id = classes[i % classes.size()].id();
      entries[i].cost = disk.cost(io_direction::read, 4096);
      q.push(entries[i]);
    }
    while (auto* e = q.pop()) {
      auto position = disk.grab(static_cast<std::uint64_t>(e->cost * 1e9) + 1);
      benchmark::DoNotOptimize(disk.deficit(position));
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
// One shard, then two shards sharing the disk.
BENCHMARK(fair_queue_and_bucket)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace reef

BENCHMARK_MAIN();
