// What a scrape costs: every default metric of two shards (the reactor's,
// the allocator's, smp's, the scheduling groups' and an HTTP server's on
// each) read through the smp queues, merged and formatted as GET /metrics
// sends it.
//
//   tools/bazel run //http:prometheus_benchmark -- --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/coroutine.h"
#include "http/prometheus.h"
#include "http/server.h"
#include "smp/metrics.h"
#include "smp/sharded.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"

namespace reef {
namespace {

future<> scrape_loop(benchmark::State& state, std::size_t& bytes, std::size_t& samples) {
  sharded<http::http_server> servers;
  co_await servers.start(http::server_options{});
  for (auto _ : state) {
    std::vector<metrics::family> all = co_await metrics::collect_all_shards();
    std::string text = http::prometheus::format(all);
    bytes = text.size();
    samples = 0;
    for (const auto& f : all) samples += f.samples.size();
    benchmark::DoNotOptimize(text.data());
  }
  co_await servers.stop();
}

void scrape_two_shards(benchmark::State& state) {
  std::size_t bytes = 0, samples = 0;
  smp::run(testing::two_shards(reactor_options{.stop_on_sigint_sigterm = false}), [&]() -> future<int> {
    return scrape_loop(state, bytes, samples).then([] { return 0; });
  });
  state.counters["bytes_per_scrape"] = benchmark::Counter(static_cast<double>(bytes));
  state.counters["samples_per_scrape"] = benchmark::Counter(static_cast<double>(samples));
}
BENCHMARK(scrape_two_shards)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace reef

BENCHMARK_MAIN();
