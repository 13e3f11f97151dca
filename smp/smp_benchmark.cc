// Messages between shards: submit_to round-trip latency with one message
// in flight, throughput with many in flight, invoke_on_all, and a ring of
// shards each sending to the next (aggregate throughput as shards are
// added; counts above this machine's CPUs are skipped).
//
//   tools/bazel run //smp:smp_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// The shards run in smp::run() on a thread of their own; Google Benchmark's
// loop runs on the main thread and hands each batch to shard 0 (through
// alien), which times it with the steady clock: the hand-off is outside the
// measured time (manual timing). Variants with "poll" run both reactors in
// poll mode (they never sleep); the others let an idle shard sleep, so every
// message may cost a wake-up.
#include <benchmark/benchmark.h>

#include <chrono>
#include <algorithm>
#include <cstdint>
#include <future>
#include <thread>
#include <vector>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "smp/topology.h"
#include "smp/alien.h"
#include "smp/smp.h"

namespace reef {
namespace {

using clock_type = std::chrono::steady_clock;

// Shards running until stop(), on a thread of their own.
class shards_running {
 public:
  // `shards` of them, pinned, one per CPU. REQUIRES: that many CPUs (two
  // share one CPU, unpinned, on a one-CPU machine).
  explicit shards_running(bool poll_mode, unsigned shards = 2) {
    smp_options o;
    topology topo = topology::discover();
    unsigned n = std::min<unsigned>(shards, static_cast<unsigned>(topo.cpus().size()));
    o.cpus = select_cpus(topo, n, std::nullopt);
    while (o.cpus.size() < shards) {
      o.cpus.push_back(o.cpus.front());
      o.pin_threads = false;
    }
    o.reactor.poll_mode = poll_mode;
    o.reactor.stop_on_sigint_sigterm = false;
    std::promise<void> up;
    std::future<void> started = up.get_future();
    _thread = std::thread([this, o, up = std::move(up)]() mutable {
      smp::run(o, [this, &up]() -> future<int> {
        up.set_value();
        co_await _stop.get_future();
        co_return 0;
      });
    });
    started.wait();
  }
  ~shards_running() {
    alien::submit_to(0, [this] { _stop.set_value(); }).get();
    _thread.join();
  }

  // Runs `batch()` on shard 0 and returns how long it took there.
  template <typename Batch>
  double seconds_on_shard_0(Batch batch) {
    return alien::submit_to(0, [batch]() mutable -> future<double> {
             auto start = clock_type::now();
             co_await batch();
             co_return std::chrono::duration<double>(clock_type::now() - start).count();
           })
        .get();
  }

 private:
  promise<> _stop;  // shard 0's
  std::thread _thread;
};

constexpr int batch_size = 1000;

void round_trip(benchmark::State& state, bool poll_mode) {
  shards_running shards(poll_mode);
  for (auto _ : state) {
    state.SetIterationTime(shards.seconds_on_shard_0([]() -> future<> {
      for (int i = 0; i < batch_size; ++i) co_await smp::submit_to(1, [] {});
    }));
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
  state.counters["round_trip"] = benchmark::Counter(
      static_cast<double>(state.iterations() * batch_size),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
void submit_to_round_trip_poll(benchmark::State& state) { round_trip(state, true); }
void submit_to_round_trip_sleeping_peer(benchmark::State& state) { round_trip(state, false); }
BENCHMARK(submit_to_round_trip_poll)->UseManualTime();
BENCHMARK(submit_to_round_trip_sleeping_peer)->UseManualTime();

void throughput(benchmark::State& state, bool poll_mode) {
  shards_running shards(poll_mode);
  const int messages = static_cast<int>(state.range(0));
  for (auto _ : state) {
    state.SetIterationTime(shards.seconds_on_shard_0([messages]() -> future<> {
      std::vector<future<>> sent;
      sent.reserve(messages);
      for (int i = 0; i < messages; ++i) sent.push_back(smp::submit_to(1, [] {}));
      for (auto& f : sent) co_await std::move(f);
    }));
  }
  state.SetItemsProcessed(state.iterations() * messages);
}
void submit_to_throughput_poll(benchmark::State& state) { throughput(state, true); }
void submit_to_throughput(benchmark::State& state) { throughput(state, false); }
BENCHMARK(submit_to_throughput_poll)->Arg(10000)->UseManualTime();
BENCHMARK(submit_to_throughput)->Arg(10000)->UseManualTime();

void invoke_on_all_two_shards(benchmark::State& state) {
  shards_running shards(true);
  for (auto _ : state) {
    state.SetIterationTime(shards.seconds_on_shard_0([]() -> future<> {
      for (int i = 0; i < batch_size; ++i) co_await smp::invoke_on_all([] {});
    }));
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
}
BENCHMARK(invoke_on_all_two_shards)->UseManualTime();

// Every shard sends to the next one around a ring, all at once: aggregate
// messages per second as shards are added (one per CPU; counts above this
// machine's CPUs are skipped).
void submit_to_ring(benchmark::State& state) {
  const auto n = static_cast<unsigned>(state.range(0));
  if (n > topology::discover().cpus().size()) {
    state.SkipWithError("more shards than CPUs");
    return;
  }
  shards_running shards(true, n);
  constexpr int per_shard = 10000;
  for (auto _ : state) {
    state.SetIterationTime(shards.seconds_on_shard_0([]() -> future<> {
      return smp::invoke_on_all([]() -> future<> {
        unsigned next = (this_shard_id() + 1) % smp::count;
        std::vector<future<>> sent;
        sent.reserve(per_shard);
        for (int i = 0; i < per_shard; ++i) sent.push_back(smp::submit_to(next, [] {}));
        for (auto& f : sent) co_await std::move(f);
      });
    }));
  }
  state.SetItemsProcessed(state.iterations() * per_shard * static_cast<std::int64_t>(n));
}
BENCHMARK(submit_to_ring)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->UseManualTime();

}  // namespace
}  // namespace reef

BENCHMARK_MAIN();
