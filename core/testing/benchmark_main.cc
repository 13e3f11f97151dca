// The main of benchmarks that need a reactor: Google Benchmark's flags,
// then a reactor on this thread (default options), then the benchmarks,
// which drive it with run_pending_tasks() / run_until().
#include <benchmark/benchmark.h>

#include "core/reactor.h"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  reef::reactor r(reef::reactor_options{.stop_on_sigint_sigterm = false});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
