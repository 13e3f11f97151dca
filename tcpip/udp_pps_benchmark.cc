// UDP datagrams per second between two native stacks over the virtual
// link, on one shard, and with two shards where the device has one queue
// (the queue's owner, shard 0, forwards half of the flows to shard 1).
// Shard 0 sends 64-byte datagrams from 64 ports of stack A to port 9 of
// stack B as fast as the link takes them; every shard of B counts what
// its socket receives. The rate is what B received per second.
//
//   tools/bazel run //tcpip:udp_pps_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// (On two shards shard 0 carries stack A, the link's copying and B's
// queue; shard 1 only receives what is forwarded to it.)
#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include <cstdlib>
#include <optional>

#include "smp/smp.h"
#include "smp/topology.h"
#include "tcpip/testing/udp_pps.h"
#include "tcpip/virtual_link.h"

namespace reef::tcpip {
namespace {

// The shards: one, or two on two CPUs (one shared if the machine has one).
smp_options shards_of(unsigned shards) {
  smp_options o;
  if (shards == 2) {
    topology topo = topology::discover();
    o.cpus = select_cpus(topo, topo.cpus().size() >= 2 ? 2 : 1, std::nullopt);
    if (o.cpus.size() < 2) {
      o.cpus.push_back(o.cpus.front());
      o.pin_threads = false;
    }
  }
  return o;
}

void udp_over_virtual_link(benchmark::State& state) {
  const unsigned shards = static_cast<unsigned>(state.range(0));
  const char* n = std::getenv("UDP_PPS_DATAGRAMS");  // (fewer, for a profile)
  const std::uint64_t datagrams = n != nullptr ? std::strtoull(n, nullptr, 10) : 200000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    virtual_link link({.queues = 1, .queue_frames_max = 4096});
    auto [seconds, got] = testing::udp_pps_run(link.end(0), link.end(1), shards_of(shards), datagrams);
    state.SetIterationTime(seconds);
    total += got;
    if (got < datagrams * 9 / 10) state.SkipWithError("more than 10% of the datagrams were lost");
  }
  state.counters["datagrams_per_second"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
}
BENCHMARK(udp_over_virtual_link)->Arg(1)->Arg(2)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reef::tcpip

BENCHMARK_MAIN();
