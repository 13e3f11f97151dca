// 64-byte UDP datagrams per second through two native stacks on one
// shard, over two DPDK net_ring ports back to back (no kernel: DPDK's
// rings and mbufs, the driver's copy into the peer's mbufs) and, in the
// same run, over the in-process virtual link. Stack A sends from 64 ports
// to port 9 of stack B as fast as the device takes them; B counts what
// its socket receives. Each datagram is transmitted once and received
// once on the one shard: the ns per datagram is the cost of both.
//
//   tools/bazel run //dpdk:udp_pps_benchmark -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
//
// EAL starts once, without hugepages, before the benchmarks.
#include <benchmark/benchmark.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "dpdk/device.h"
#include "dpdk/eal.h"
#include "smp/smp.h"
#include "tcpip/native_stack.h"
#include "tcpip/virtual_link.h"

namespace reef::dpdk {
namespace {

constexpr std::uint32_t a_ip = 0x0a000001;
constexpr std::uint32_t b_ip = 0x0a000002;
constexpr auto& at = tcpip::ipv4_socket_address;

std::uint16_t port_a = 0;
std::uint16_t port_b = 0;

tcpip::native_stack_options options_for(std::uint32_t ip) {
  tcpip::native_stack_options o;
  o.ip.address = ip;
  o.udp.receive_queue_max = 4096;
  return o;
}

std::atomic<std::uint64_t> received{0};

future<> count_all(udp_channel& ch) {
  for (;;) {
    try {
      co_await ch.receive();
    } catch (const std::system_error&) {
      co_return;
    }
    received.fetch_add(1, std::memory_order_relaxed);
  }
}

// One run over devices `a` and `b`: `datagrams` sent; the seconds from
// the first sent to the last received (or to the end of the wait for
// stragglers), and how many came.
std::pair<double, std::uint64_t> run_once(tcpip::device& a_dev, tcpip::device& b_dev, std::uint64_t datagrams) {
  smp_options o;
  o.reactor.stop_on_sigint_sigterm = false;
  double seconds = 0;
  received = 0;
  smp::run(std::move(o), [&]() -> future<int> {
    tcpip::native_network a(a_dev, options_for(a_ip));
    tcpip::native_network b(b_dev, options_for(b_ip));
    co_await a.start();
    co_await b.start();
    udp_channel sink = b.local().make_udp_channel(at(0, 9));
    future<> sinking = count_all(sink);
    std::vector<udp_channel> from;
    for (int i = 0; i < 64; ++i) from.push_back(a.local().make_udp_channel(at(0, static_cast<std::uint16_t>(20000 + i))));
    // Addresses learned before the clock starts.
    co_await from[0].send(at(b_ip, 9), packet::copy_of("hello"));
    while (received.load() == 0) co_await sleep(std::chrono::milliseconds(1));
    received = 0;
    static char payload[64];
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < datagrams; ++i) {
      co_await from[i % from.size()].send(at(b_ip, 9), packet(fragment{payload, sizeof(payload)}, deleter()));
      // The receiver keeps up: at most 1024 in flight (the rings hold
      // 2048). (A sleep lets the pollers that carry the frames run.)
      if (i % 256 == 255) {
        while (i + 1 - received.load(std::memory_order_relaxed) > 1024) co_await sleep(std::chrono::microseconds(10));
      }
    }
    const auto sent_by = std::chrono::steady_clock::now();
    while (received.load() < datagrams && std::chrono::steady_clock::now() - sent_by < std::chrono::seconds(1)) {
      co_await sleep(std::chrono::microseconds(10));
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (auto& c : from) c.close();
    sink.close();
    co_await std::move(sinking);
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  return {seconds, received.load()};
}

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
    auto [seconds, got] = run_once(*a, *b, datagrams);
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
