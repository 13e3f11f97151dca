// Proves //third_party/benchmark compiles and links; run as a smoke test.
#include <benchmark/benchmark.h>

namespace {

void bm_increment(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) benchmark::DoNotOptimize(++x);
}
BENCHMARK(bm_increment);

}  // namespace

BENCHMARK_MAIN();
