#include "tcpip/testing/udp_pps.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "tcpip/native_stack.h"

namespace reef::tcpip::testing {
namespace {

constexpr std::uint32_t a_ip = 0x0a000001;  // 10.0.0.1
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

future<double> send_all(native_network& a, std::uint64_t datagrams) {
  std::vector<udp_channel> from;
  for (int i = 0; i < 64; ++i) from.push_back(a.local().make_udp_channel(at(0, static_cast<std::uint16_t>(20000 + i))));
  // Addresses learned before the clock starts.
  co_await from[0].send(at(b_ip, 9), packet::copy_of("hello"));
  for (int waited = 0; received.load() == 0; ++waited) {
    if (waited == 5000) throw std::runtime_error("the first datagram did not arrive in 5 s");
    co_await sleep(std::chrono::milliseconds(1));
  }
  received = 0;
  static char payload[64];
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < datagrams; ++i) {
    co_await from[i % from.size()].send(at(b_ip, 9), packet(fragment{payload, sizeof(payload)}, deleter()));
    // The receivers keep up: devices hold a few thousand frames. (A
    // sleep, not yield(): the pollers that carry the frames run between
    // timers, while yield() only lets other tasks in.)
    if (i % 256 == 255) {
      while (i + 1 - received.load(std::memory_order_relaxed) > 1024) co_await sleep(std::chrono::microseconds(10));
    }
  }
  const auto sent_by = std::chrono::steady_clock::now();
  while (received.load() < datagrams && std::chrono::steady_clock::now() - sent_by < std::chrono::seconds(1)) {
    co_await sleep(std::chrono::microseconds(10));
  }
  for (auto& c : from) c.close();
  co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

future<int> run_on_shards(device& a_dev, device& b_dev, std::uint64_t datagrams, double& seconds) {
  native_network a(a_dev, options_for(a_ip));
  native_network b(b_dev, options_for(b_ip));
  co_await a.start();
  co_await b.start();
  co_await smp::invoke_on_all([&b] {
    sink = b.local().make_udp_channel(at(0, 9));
    sinking = count_all(*sink);
  });
  std::exception_ptr failed;
  try {
    seconds = co_await send_all(a, datagrams);
  } catch (...) {
    failed = std::current_exception();  // (after the stacks stop)
  }
  co_await smp::invoke_on_all([]() -> future<> {
    sink->close();
    co_await std::move(*sinking);
    sinking.reset();
    sink.reset();
  });
  co_await a.stop();
  co_await b.stop();
  if (failed) std::rethrow_exception(failed);
  co_return 0;
}

}  // namespace

std::pair<double, std::uint64_t> udp_pps_run(device& a, device& b, smp_options shards, std::uint64_t datagrams) {
  double seconds = 0;
  received = 0;
  shards.reactor.stop_on_sigint_sigterm = false;
  smp::run(std::move(shards), [&] { return run_on_shards(a, b, datagrams, seconds); });
  return {seconds, received.load()};
}

}  // namespace reef::tcpip::testing
