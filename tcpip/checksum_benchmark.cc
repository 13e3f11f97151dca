// The Internet checksum over a 64-byte and a 1500-byte frame.
//
//   tools/bazel run //tcpip:checksum_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "tcpip/checksum.h"

namespace reef::tcpip {
namespace {

void internet_checksum_bytes(benchmark::State& state) {
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(state.range(0)));
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 7);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bytes.data());
    benchmark::DoNotOptimize(internet_checksum(bytes));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(internet_checksum_bytes)->Arg(64)->Arg(1500);

}  // namespace
}  // namespace reef::tcpip

BENCHMARK_MAIN();
