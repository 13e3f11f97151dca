// udp_echo: answers every UDP datagram with itself, on every shard, on
// the stack --network-stack names (the native stack on a TAP interface,
// or the kernel's). A small server to ping and to send datagrams to; the
// TCP issue extends it.
//
//   udp_echo --network-stack native --tap-device tap0 \
//            --host-ipv4-addr 10.0.0.2/24 --port 7
//
// It logs "echoing on ADDRESS" once every shard listens, and at SIGINT or
// SIGTERM how many datagrams it echoed (and, on the native stack, its
// counts: frames, errors by layer, forwarding), then exits 0.
#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <system_error>

#include "absl/flags/flag.h"
#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "net/stack.h"
#include "net/stack_flags.h"
#include "smp/app_template.h"
#include "smp/smp.h"
#include "tcpip/native_stack_flags.h"

ABSL_FLAG(int, port, 7, "the UDP port to echo on");

namespace reef {
namespace {

logger echo_log("udp_echo");

std::atomic<std::uint64_t> echoed{0};

// This shard's socket and its loop; none where the stack lets only one
// shard have the port (the kernel's, without SO_REUSEPORT).
thread_local std::optional<udp_channel> channel;
thread_local std::optional<future<>> loop;

future<> echo(udp_channel& ch) {
  for (;;) {
    udp_datagram d;
    try {
      d = co_await ch.receive();
    } catch (const std::system_error& e) {
      if (e.code().value() == ECONNABORTED) co_return;  // closed
      echo_log.debug("receive: {}", e.what());          // an ICMP error about an answer: go on
      continue;
    }
    try {
      co_await ch.send(d.source, packet(std::move(d.data)));
      ++echoed;
    } catch (const std::exception& e) {
      echo_log.debug("echo to {} failed: {}", d.source, e.what());
    }
  }
}

future<> close_all() {
  return smp::invoke_on_all([]() -> future<> {
    if (channel) channel->close();
    if (loop) co_await std::move(*loop);
    loop.reset();
    channel.reset();
  });
}

// The native stack's counts, all shards together.
future<> log_native_stats() {
  auto* net = tcpip::process_native_network();
  auto s = co_await smp::map_reduce(
      [net] {
        auto* stack = net->running();
        return stack != nullptr ? stack->stats() : tcpip::native_stack_stats{};
      },
      tcpip::native_stack_stats{}, [](tcpip::native_stack_stats a, const tcpip::native_stack_stats& b) {
        a += b;
        return a;
      });
  echo_log.info(
      "native stack: rx_frames={} tx_frames={} ethernet_errors={} arp_errors={} ipv4_errors={} not_ours={} "
      "no_memory={} not_our_address={} bad_source={} unknown_type={} udp_received={} udp_errors={} udp_no_port={} forwarded={} forward_dropped={} relayed={}",
      s.ip.rx_frames, s.ip.tx_frames, s.ip.ethernet_errors, s.ip.arp_errors, s.ip.ipv4_errors, s.ip.not_ours,
      s.ip.no_memory, s.ip.not_our_address, s.ip.bad_source, s.ip.unknown_type, s.udp.received, s.udp.errors, s.udp.no_port, s.forwarded, s.forward_dropped, s.relayed);
}

future<int> run_echo() {
  const int port = absl::GetFlag(FLAGS_port);
  if (port <= 0 || port > 65535) {
    echo_log.error("--port {}: not a port (1-65535)", port);
    co_return 2;
  }
  socket_address address(inet_address::parse("0.0.0.0"), static_cast<std::uint16_t>(port));
  std::string failed;
  try {
    co_await smp::invoke_on_all([address] {
      try {
        channel = make_udp_channel(address);
      } catch (const std::system_error& e) {
        if (e.code().value() != EADDRINUSE || this_shard_id() == 0) throw;
        return;  // another shard has it
      }
      loop = echo(*channel);
    });
  } catch (const std::exception& e) {
    failed = e.what();
  }
  if (failed.empty()) {
    // With --dhcp: an address first.
    try {
      co_await tcpip::native_stack_configured();
    } catch (const std::exception& e) {
      failed = e.what();
    }
  }
  if (!failed.empty()) {
    echo_log.error("cannot echo on port {}: {}", port, failed);
    co_await close_all();
    if (tcpip::process_native_network() != nullptr) co_await log_native_stats();
    co_return 1;
  }
  echo_log.info("echoing on {} with {} shard(s), {} stack, reactor backend {}", channel->local_address(), smp::count,
                network_stack_flag(), engine().io().name());
  co_await app_template::stop_signal();
  co_await close_all();
  if (tcpip::process_native_network() != nullptr) co_await log_native_stats();
  echo_log.info("stopped after echoing {} datagram(s)", echoed.load());
  co_return 0;
}

}  // namespace
}  // namespace reef

int main(int argc, char** argv) {
  reef::app_template app({.name = "udp_echo", .description = "Answers every UDP datagram with itself."});
  return app.run(argc, argv, [] { return reef::run_echo(); });
}
