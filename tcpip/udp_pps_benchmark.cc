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

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <optional>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "smp/smp.h"
#include "smp/topology.h"
#include "tcpip/native_stack.h"
#include "tcpip/virtual_link.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t a_ip = 0x0a000001;
constexpr std::uint32_t b_ip = 0x0a000002;

constexpr auto& at = ipv4_socket_address;

native_stack_options options_for(std::uint32_t ip) {
  native_stack_options o;
  o.ip.address = ip;
  o.udp.receive_queue_max = 4096;
  o.in_flight_max = 4096;
  return o;
}

std::atomic<std::uint64_t> received{0};
thread_local std::optional<udp_channel> sink;
thread_local std::optional<future<>> sinking;

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

// One run: `datagrams` sent; the seconds from the first to the last
// received (or to the end of the wait for stragglers), and how many came.
std::pair<double, std::uint64_t> run_once(unsigned shards, std::uint64_t datagrams) {
  smp_options o;
  if (shards == 2) {
    topology topo = topology::discover();
    o.cpus = select_cpus(topo, topo.cpus().size() >= 2 ? 2 : 1, std::nullopt);
    if (o.cpus.size() < 2) {
      o.cpus.push_back(o.cpus.front());
      o.pin_threads = false;
    }
  }
  o.reactor.stop_on_sigint_sigterm = false;
  double seconds = 0;
  received = 0;
  smp::run(std::move(o), [&]() -> future<int> {
    virtual_link link({.queues = 1, .queue_frames_max = 4096});
    native_network a(link.end(0), options_for(a_ip));
    native_network b(link.end(1), options_for(b_ip));
    co_await a.start();
    co_await b.start();
    co_await smp::invoke_on_all([&b] {
      sink = b.local().make_udp_channel(at(0, 9));
      sinking = count_all(*sink);
    });
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
      // Let the receiving side keep up: the link holds 4096 frames.
      // (A sleep, not yield(): the pollers that carry the frames run
      // between timers, while yield() only lets other tasks in.)
      if (i % 256 == 255) {
        while (i + 1 - received.load(std::memory_order_relaxed) > 2048) co_await sleep(std::chrono::microseconds(10));
      }
    }
    const auto sent_by = std::chrono::steady_clock::now();
    while (received.load() < datagrams && std::chrono::steady_clock::now() - sent_by < std::chrono::seconds(1)) {
      co_await sleep(std::chrono::microseconds(10));
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (auto& c : from) c.close();
    co_await smp::invoke_on_all([]() -> future<> {
      sink->close();
      co_await std::move(*sinking);
      sinking.reset();
      sink.reset();
    });
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  return {seconds, received.load()};
}

void udp_over_virtual_link(benchmark::State& state) {
  const unsigned shards = static_cast<unsigned>(state.range(0));
  const char* n = std::getenv("UDP_PPS_DATAGRAMS");  // (fewer, for a profile)
  const std::uint64_t datagrams = n != nullptr ? std::strtoull(n, nullptr, 10) : 200000;
  std::uint64_t total = 0;
  for (auto _ : state) {
    auto [seconds, got] = run_once(shards, datagrams);
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
