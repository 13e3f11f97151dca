// The native stack's cost per datagram on one shard, without a device:
// the receive path (an Ethernet frame with a 22- or 64-byte datagram
// through Ethernet, IPv4 and UDP checks, checksums included, into a
// socket's queue, and out of it by receive()) and the transmit path
// (send() on a socket through UDP, IPv4 and Ethernet headers, checksums
// computed, to the device queue, which frees the frame; the next hop
// already known). The frames the "device" lends are not copied, as a
// real device's are not. Target: 100 ns each for 64 bytes.
//
//   tools/bazel build --config=release //tcpip:stack_benchmark
//   taskset -c 1 bazel-bin/tcpip/stack_benchmark --benchmark_filter=_path/ \
//       --benchmark_repetitions=5 --benchmark_min_time=1 --benchmark_report_aggregates_only=true
//
// The *_20k variants run exactly 20000 datagrams, for instruction counts
// (this VM has no hardware counters):
//
//   valgrind --tool=callgrind --toggle-collect='*receive_path*' \
//       bazel-bin/tcpip/stack_benchmark --benchmark_filter=receive_path_20k
#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include <cstdint>
#include <vector>

#include "smp/smp.h"
#include "tcpip/checksum.h"
#include "tcpip/ethernet.h"
#include "tcpip/ipv4_header.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/udp.h"
#include "tcpip/udp_header.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t our_ip = 0x0a000001;
constexpr std::uint32_t peer_ip = 0x0a000002;
const ethernet_address our_mac{{0x02, 0, 0, 0, 0, 1}};
const ethernet_address peer_mac{{0x02, 0, 0, 0, 0, 2}};

constexpr auto& at = ipv4_socket_address;

// A device that takes every frame and keeps none.
class sink_queue final : public device_queue {
 public:
  std::size_t receive(std::vector<received_frame>&, std::size_t) override { return 0; }
  std::size_t transmit(std::span<tx_frame> frames) override {
    _stats.tx_frames += frames.size();
    for (auto& f : frames) packet sent(std::move(f.frame));  // taken, and freed as a device would once it is out
    return frames.size();
  }
  void on_arrival(noncopyable_function<void()>) override {}
};

class sink_device final : public device {
 public:
  sink_device() { _info.mac = our_mac; }
  const device_info& info() const noexcept override { return _info; }
  std::unique_ptr<device_queue> open_queue(unsigned) override { return std::make_unique<sink_queue>(); }

 private:
  device_info _info;
};

// A UDP datagram with `payload` bytes from the peer to us, in a frame.
std::vector<std::uint8_t> frame_of(std::size_t payload) {
  std::vector<std::uint8_t> f(14 + 20 + 8 + payload, 0);
  ethernet_header{our_mac, peer_mac, static_cast<std::uint16_t>(ether_type::ipv4)}.write(f);
  ipv4_header ip;
  ip.protocol = 17;
  ip.source = peer_ip;
  ip.destination = our_ip;
  ip.total_length = static_cast<std::uint16_t>(20 + 8 + payload);
  ip.write(std::span<std::uint8_t>(f).subspan(14));
  auto udp = std::span<std::uint8_t>(f).subspan(34);
  for (std::size_t i = 0; i < payload; ++i) udp[8 + i] = static_cast<std::uint8_t>(i);
  udp_header h{5000, 7, static_cast<std::uint16_t>(8 + payload), 0};
  h.write(udp);
  h.checksum = udp_checksum(peer_ip, our_ip,
                            packet::copy_of(std::string_view(reinterpret_cast<const char*>(udp.data()), udp.size())));
  h.write(udp);
  return f;
}

void receive_path(benchmark::State& state) {
  sink_device dev;
  ipv4_interface ip(dev, dev.open_queue(0), {.address = our_ip});
  udp_layer udp(ip);
  udp_channel ch = udp.make_channel(at(0, 7));
  auto bytes = frame_of(static_cast<std::size_t>(state.range(0)));
  fragment lent{reinterpret_cast<char*>(bytes.data()), bytes.size()};
  for (auto _ : state) {
    ip.process(received_frame{packet(lent, deleter()), std::nullopt, checksum_status::unknown});
    auto d = ch.receive();
    benchmark::DoNotOptimize(d.get().data.size());
  }
  if (udp.stats().received != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("a datagram was not received");
  state.counters["frame_bytes"] = static_cast<double>(bytes.size());
  ch.close();
}
BENCHMARK(receive_path)->Arg(22)->Arg(64);
BENCHMARK(receive_path)->Name("receive_path_20k")->Arg(22)->Iterations(20000);

void transmit_path(benchmark::State& state) {
  sink_device dev;
  ipv4_interface ip(dev, dev.open_queue(0), {.address = our_ip});
  udp_layer udp(ip);
  ip.start();
  ip.learn_neighbour(peer_ip, peer_mac, true);
  udp_channel ch = udp.make_channel(at(0, 5000));
  std::vector<char> payload(static_cast<std::size_t>(state.range(0)), 'x');
  const socket_address to = at(peer_ip, 7);
  for (auto _ : state) {
    auto sent = ch.send(to, packet(fragment{payload.data(), payload.size()}, deleter()));
    benchmark::DoNotOptimize(sent.available());
    sent.get();
  }
  if (ip.stats().tx_frames < static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("a datagram was not sent");
  ch.close();
  auto stopped = ip.stop();  // (nothing waits: it ends at once)
  if (!stopped.available()) state.SkipWithError("the interface did not stop at once");
  stopped.ignore_ready_future();
}
BENCHMARK(transmit_path)->Arg(22)->Arg(64);
BENCHMARK(transmit_path)->Name("transmit_path_20k")->Arg(22)->Iterations(20000);

}  // namespace
}  // namespace reef::tcpip

// The benchmarks run inside shard 0 of smp::run: memory from the shard's
// own arena (no lock), a reactor for the futures, as in a server.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  reef::smp_options options;
  options.reactor.stop_on_sigint_sigterm = false;
  // The benchmarks run long in one task: no preemption (continuations of
  // ready futures run at once, as between preemption ticks), and at most
  // one stall report (its watcher wakes every quarter of the threshold,
  // and the process waits for it at exit).
  options.reactor.task_quota = std::chrono::microseconds(1'000'000'000);
  options.reactor.stall_threshold = std::chrono::seconds(4);
  return reef::smp::run(std::move(options), [] {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return reef::make_ready_future<int>(0);
  });
}
