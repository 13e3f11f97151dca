// TCP between two native stacks over the virtual link, both on one shard
// (one core carries both ends, as it does for the kernel's TCP between
// two namespaces in tools/bench/tcp_vs_linux.sh):
//
//  - tcp_bulk: one connection, MSS 1460 (MTU 1500), no loss; A writes
//    TCP_BULK_BYTES (default 512 MiB) in 64 KiB pieces, B reads them.
//    Reports Gbit/s of payload, and nanoseconds per MSS of payload (per
//    segment on the wire). offloads:0, a link that does nothing for the
//    stacks: every segment cut and summed by the stack; offloads:1, the
//    link offers what veth offers Linux (checksums left undone between
//    the two ends, TSO segments passed whole), as in the Linux run.
//  - tcp_connection_rate: 16 clients in parallel, each connecting,
//    sending a request, reading the answer and closing, for
//    TCP_CONNECTIONS connections in all (default 20,000). Reports
//    connections per second.
//
//   tools/bazel build --config=release //tcpip:tcp_benchmark
//   taskset -c 1 bazel-bin/tcpip/tcp_benchmark --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <vector>

#include "core/coroutine.h"
#include "core/gate.h"
#include "smp/smp.h"
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
  return o;
}

// Stacks A and B on this shard, over a virtual link; start() before use,
// stop() after.
struct two_stacks {
  explicit two_stacks(device_offloads offloads = {}) : link({.offloads = offloads, .queue_frames_max = 4096}) {}
  virtual_link link;
  native_network a{link.end(0), options_for(a_ip)};
  native_network b{link.end(1), options_for(b_ip)};
  future<> start();
  future<> stop();
};

// (Out of the class: clang 14 cannot assemble an inline coroutine under
// the sanitizers.)
future<> two_stacks::start() {
  co_await a.start();
  co_await b.start();
}

future<> two_stacks::stop() {
  co_await a.stop();
  co_await b.stop();
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

smp_options one_shard() {
  smp_options o;
  o.reactor.stop_on_sigint_sigterm = false;
  return o;
}

struct bulk_result {
  double seconds = 0;
  std::uint64_t bytes = 0;
  std::uint64_t segments = 0;  // as the receiver got them (TSO: whole)
  std::uint32_t mss = 1500 - 40 - 12;  // the MTU less the headers and the timestamps
};

device_offloads veth_offloads() {
  return device_offloads{.rx_checksum_verified = true, .tx_checksum = true, .tso = true, .lro = true};
}

bulk_result run_bulk(std::uint64_t total, bool offloads) {
  bulk_result r;
  smp::run(one_shard(), [&]() -> future<int> {
    two_stacks stacks(offloads ? veth_offloads() : device_offloads{});
    co_await stacks.start();
    native_network& a = stacks.a;
    native_network& b = stacks.b;
    server_socket server = b.local().listen(at(0, 5001), {});
    auto accepted = server.accept();
    connected_socket client = co_await a.local().connect(at(b_ip, 5001), {});
    accept_result s = co_await std::move(accepted);
    const std::uint64_t segments_before = b.local().stats().tcp.segments.segments_received;
    auto reader = [](accept_result& s, std::uint64_t& got) -> future<> {
      auto in = s.connection.input();
      for (;;) {
        temporary_buffer<char> buf = co_await in.read();
        if (buf.empty()) co_return;
        got += buf.size();
      }
    };
    temporary_buffer<char> piece(65536);
    for (std::size_t i = 0; i < piece.size(); ++i) piece.get_write()[i] = static_cast<char>(i);
    const auto start = std::chrono::steady_clock::now();
    auto reading = reader(s, r.bytes);
    {
      auto out = client.output(65536);
      for (std::uint64_t sent = 0; sent < total; sent += piece.size()) co_await out.write(piece.share());
      co_await out.close();
    }
    co_await std::move(reading);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.segments = b.local().stats().tcp.segments.segments_received - segments_before;
    client = connected_socket();
    s.connection = connected_socket();
    server = server_socket();
    co_await stacks.stop();
    co_return 0;
  });
  return r;
}

void tcp_bulk(benchmark::State& state) {
  const std::uint64_t total = env_or("TCP_BULK_BYTES", std::uint64_t{512} << 20);
  std::uint64_t bytes = 0, segments = 0, wire_segments = 0;
  double seconds = 0;
  for (auto _ : state) {
    bulk_result r = run_bulk(total, state.range(0) != 0);
    if (r.bytes != total) state.SkipWithError("the reader did not get every byte");
    state.SetIterationTime(r.seconds);
    bytes += r.bytes;
    segments += r.segments;
    wire_segments += (r.bytes + r.mss - 1) / r.mss;
    seconds += r.seconds;
  }
  state.counters["Gbit/s"] = benchmark::Counter(static_cast<double>(bytes) * 8 / 1e9 / seconds);
  state.counters["ns_per_segment"] = benchmark::Counter(seconds * 1e9 / static_cast<double>(wire_segments));
  state.counters["segments_received"] = benchmark::Counter(static_cast<double>(segments));
}
BENCHMARK(tcp_bulk)->ArgName("offloads")->Arg(0)->Arg(1)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

double run_connections(std::uint64_t total) {
  double seconds = 0;
  smp::run(one_shard(), [&]() -> future<int> {
    two_stacks stacks;
    co_await stacks.start();
    native_network& a = stacks.a;
    native_network& b = stacks.b;
    server_socket server = b.local().listen(at(0, 80), {});
    gate serving;
    auto serve = [](server_socket& server, gate& serving) -> future<> {
      for (;;) {
        accept_result s;
        try {
          s = co_await server.accept();
        } catch (const std::system_error&) {
          co_return;
        }
        (void)with_gate(serving, [s = std::move(s)]() mutable -> future<> {
          auto in = s.connection.input();
          auto out = s.connection.output();
          (void)co_await in.read();
          co_await out.write("ok");
          co_await out.close();
        }).handle_exception([](std::exception_ptr) {});
      }
    };
    auto accepting = serve(server, serving);
    std::uint64_t next = 0;
    auto client = [](native_network& a, std::uint64_t& next, std::uint64_t total) -> future<> {
      while (next < total) {
        ++next;
        connected_socket c = co_await a.local().connect(at(b_ip, 80), {});
        auto out = c.output();
        auto in = c.input();
        co_await out.write("GET");
        co_await out.flush();
        while (!(co_await in.read()).empty()) {
        }
        co_await out.close();
      }
    };
    const auto start = std::chrono::steady_clock::now();
    std::vector<future<>> clients;
    for (int i = 0; i < 16; ++i) clients.push_back(client(a, next, total));
    for (auto& f : clients) co_await std::move(f);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    server.abort_accept();
    co_await std::move(accepting);
    co_await serving.close();
    server = server_socket();
    co_await stacks.stop();
    co_return 0;
  });
  return seconds;
}

void tcp_connection_rate(benchmark::State& state) {
  const std::uint64_t total = env_or("TCP_CONNECTIONS", 20000);
  double seconds = 0;
  std::uint64_t done = 0;
  for (auto _ : state) {
    const double s = run_connections(total);
    state.SetIterationTime(s);
    seconds += s;
    done += total;
  }
  state.counters["connections_per_second"] = benchmark::Counter(static_cast<double>(done) / seconds);
}
BENCHMARK(tcp_connection_rate)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reef::tcpip

BENCHMARK_MAIN();
