// 64-byte UDP datagrams per second through two native stacks on one
// shard, over two DPDK net_ring ports back to back (no kernel: DPDK's
// rings and mbufs) and, in the same run, over the in-process virtual
// link (the load: tcpip/testing/udp_pps.h). Each datagram is transmitted
// once and received once on the one shard: the ns per datagram is the
// cost of both.
//
//   tools/bazel run //dpdk:udp_pps_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// EAL starts once, without hugepages, before the benchmarks.
#include <benchmark/benchmark.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "dpdk/device.h"
#include "dpdk/eal.h"
#include "smp/smp.h"
#include "tcpip/testing/udp_pps.h"
#include "tcpip/virtual_link.h"

namespace reef::dpdk {
namespace {

std::uint16_t port_a = 0;
std::uint16_t port_b = 0;

std::uint64_t datagrams_per_run() {
  const char* n = std::getenv("UDP_PPS_DATAGRAMS");  // (fewer, for a smoke run or a profile)
  return n != nullptr ? std::strtoull(n, nullptr, 10) : 500000;
}

template <typename Devices>
void measure(benchmark::State& state, Devices make) {
  const std::uint64_t datagrams = datagrams_per_run();
  std::uint64_t total = 0;
  double seconds_total = 0;
  for (auto _ : state) {
    auto [a, b] = make();
    auto [seconds, got] = tcpip::testing::udp_pps_run(*a, *b, smp_options{}, datagrams);
    state.SetIterationTime(seconds);
    total += got;
    seconds_total += seconds;
    if (got < datagrams * 9 / 10) state.SkipWithError("more than 10% of the datagrams were lost");
  }
  state.counters["Mpps"] = benchmark::Counter(static_cast<double>(total) / 1e6, benchmark::Counter::kIsRate);
  state.counters["ns_per_datagram"] = total > 0 ? seconds_total * 1e9 / static_cast<double>(total) : 0;
}

void udp_over_net_ring(benchmark::State& state) {
  measure(state, [] {
    return std::pair(std::make_unique<dpdk_device>(dpdk_device_options{.port = port_a, .link_wait = {}}),
                     std::make_unique<dpdk_device>(dpdk_device_options{.port = port_b, .link_wait = {}}));
  });
}
BENCHMARK(udp_over_net_ring)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

void udp_over_virtual_link(benchmark::State& state) {
  // (The link outlives both ends' use: kept with them.)
  struct link_ends {
    tcpip::virtual_link link{{.queues = 1, .queue_frames_max = 4096}};
  };
  std::shared_ptr<link_ends> l;
  measure(state, [&l] {
    l = std::make_shared<link_ends>();
    auto keep = [l](tcpip::device* d) { return std::shared_ptr<tcpip::device>(l, d); };
    return std::pair(keep(&l->link.end(0)), keep(&l->link.end(1)));
  });
}
BENCHMARK(udp_over_virtual_link)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

void make_ring_ports() {
  std::vector<rte_ring*> a_to_b{::rte_ring_create("ab", 2048, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ)};
  std::vector<rte_ring*> b_to_a{::rte_ring_create("ba", 2048, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ)};
  const int a = ::rte_eth_from_rings("ring_a", b_to_a.data(), 1, a_to_b.data(), 1, SOCKET_ID_ANY);
  const int b = ::rte_eth_from_rings("ring_b", a_to_b.data(), 1, b_to_a.data(), 1, SOCKET_ID_ANY);
  if (a_to_b[0] == nullptr || b_to_a[0] == nullptr || a < 0 || b < 0) {
    std::fprintf(stderr, "could not make the net_ring ports\n");
    std::exit(1);
  }
  port_a = static_cast<std::uint16_t>(a);
  port_b = static_cast<std::uint16_t>(b);
}

}  // namespace
}  // namespace reef::dpdk

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  reef::dpdk::start_eal(
      {.args = reef::dpdk::split_eal_args("--no-huge -m 512 --no-pci --no-telemetry --log-level=lib.eal:warning")});
  reef::dpdk::make_ring_ports();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  reef::dpdk::stop_eal();
  return 0;
}
