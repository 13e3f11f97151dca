// The software RSS hash of an IPv4 4-tuple (target: <= 20 ns).
//
//   tools/bazel run //tcpip:toeplitz_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>

#include "tcpip/toeplitz.h"

namespace reef::tcpip {
namespace {

void toeplitz_ipv4_ports(benchmark::State& state) {
  toeplitz_hash h;
  std::uint32_t source = 0x0a000001;
  std::uint16_t port = 1024;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.ipv4_ports(source, 0x0a000002, port, 80));
    ++port;  // a new flow each time: no answer to remember
  }
}
BENCHMARK(toeplitz_ipv4_ports);

void toeplitz_ipv4_ports_to_shard(benchmark::State& state) {
  toeplitz_hash h;
  redirection_table t(16);
  std::uint16_t port = 1024;
  for (auto _ : state) {
    benchmark::DoNotOptimize(t.shard_of(h.ipv4_ports(0x0a000001, 0x0a000002, port, 80)));
    ++port;
  }
}
BENCHMARK(toeplitz_ipv4_ports_to_shard);

}  // namespace
}  // namespace reef::tcpip

BENCHMARK_MAIN();
