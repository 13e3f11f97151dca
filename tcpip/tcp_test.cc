// TCP between two native hosts over the virtual link: connections opened
// and closed through net/api.h's sockets, bytes both ways checked byte
// for byte (with a clean link and with loss, duplication, reordering and
// corruption, and over a 1 Mbit/s link with 50 ms of delay), resets for
// ports nobody listens on, SYN cookies, timeouts,
// aborts, and the per-shard counts back at zero when all is closed.
#include "tcpip/tcp.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/sanitizers.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "core/when_all.h"
#include "core/with_timeout.h"
#include "tcpip/testing/two_hosts.h"
#include "tcpip/udp.h"
#include "tcpip/virtual_link.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;
using namespace reef::tcpip::testing;

constexpr auto& at = ipv4_socket_address;

tcp_layer_options quick() {
  tcp_layer_options o;
  o.connection.time_wait = 50ms;
  o.connection.rtt.min_rto = 20ms;
  return o;
}

struct tcp_hosts : two_hosts {
  explicit tcp_hosts(virtual_link_options link = {}, tcp_layer_options a_options = quick(),
                     tcp_layer_options b_options = quick(), interface_config a_config = config_of(a_ip))
      : two_hosts(std::move(link), a_config), tcp_a(a, a_options), tcp_b(b, b_options) {}
  // Waits until neither side keeps a connection, a timer or a byte.
  future<> settle() {
    co_await wait_until([&] {
      auto sa = tcp_a.stats();
      auto sb = tcp_b.stats();
      return sa.connections + sb.connections + sa.timers_armed + sb.timers_armed + sa.buffered_bytes +
                 sb.buffered_bytes ==
             0;
    });
  }
  tcp_layer tcp_a;
  tcp_layer tcp_b;
};

// A connection from A to B's `server` (listening on port 80): A's
// socket and what B's accept() gave.
struct connection_pair {
  connected_socket client;
  accept_result server;
};
future<connection_pair> open_connection(tcp_hosts& h, server_socket& server) {
  auto accepted = server.accept();
  connected_socket c = co_await h.tcp_a.connect(at(b_ip, 80), {});
  accept_result s = co_await std::move(accepted);
  co_return connection_pair{std::move(c), std::move(s)};
}

std::string text_of(const temporary_buffer<char>& b) { return std::string(b.get(), b.size()); }

// Byte i of a test stream.
char byte_at(std::uint64_t i) { return static_cast<char>((i * 2654435761u) >> 13); }

// Writes `total` bytes of the test stream, then closes.
future<> send_stream(output_stream<char>& out, std::uint64_t total) {
  std::uint64_t sent = 0;
  while (sent < total) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(total - sent, 65536));
    temporary_buffer<char> b(n);
    for (std::size_t i = 0; i < n; ++i) b.get_write()[i] = byte_at(sent + i);
    co_await out.write(std::move(b));
    sent += n;
  }
  co_await out.flush();
  co_await out.close();
}

// Reads to the end; how many bytes matched the test stream in order
// (counting stops at the first that does not).
future<std::uint64_t> receive_stream(input_stream<char>& in) {
  std::uint64_t good = 0;
  bool intact = true;
  for (;;) {
    temporary_buffer<char> b = co_await in.read();
    if (b.empty()) break;
    for (std::size_t i = 0; i < b.size() && intact; ++i) {
      if (b[i] != byte_at(good)) {
        intact = false;
        // (Which byte, and what came: a corrupted frame taken differs
        // in one bit, a misplaced one in many.)
        ADD_FAILURE() << "byte " << good << " is " << int(static_cast<unsigned char>(b[i])) << ", not "
                      << int(static_cast<unsigned char>(byte_at(good))) << " (a read of " << b.size() << " bytes)";
      } else {
        ++good;
      }
    }
  }
  co_return good;
}

// Both ways at once over one connection: each side sends `total` bytes
// and reads the other's.
// The counts that tell why a stream came short: the link's, and each
// side's resets, time-outs and drops.
std::string counts(tcp_hosts& h) {
  const virtual_link_stats l = h.link.stats();
  auto side = [](const char* name, const tcp_layer_stats& t) {
    return std::string(name) + ": resets received " + std::to_string(t.segments.resets_received) + ", sent " +
           std::to_string(t.segments.resets_sent) + ", timed out " + std::to_string(t.segments.connections_timed_out) +
           ", out of order dropped " + std::to_string(t.segments.out_of_order_dropped) + ", memory drops " +
           std::to_string(t.memory_drops) + ", retransmitted " + std::to_string(t.segments.retransmitted);
  };
  return "(link: lost " + std::to_string(l.lost) + ", corrupted " + std::to_string(l.corrupted) + ", too long " +
         std::to_string(l.too_long) + ", overflowed " + std::to_string(l.overflowed) + "; " +
         side("A", h.tcp_a.stats()) + "; " + side("B", h.tcp_b.stats()) + ")";
}

future<> exchange(tcp_hosts& h, std::uint64_t total) {
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto [c, s] = co_await open_connection(h, server);
  auto c_in = c.input();
  auto c_out = c.output();
  auto s_in = s.connection.input();
  auto s_out = s.connection.output();
  auto [a_sent, b_sent, a_got, b_got] = co_await when_all(send_stream(c_out, total), send_stream(s_out, total),
                                                         receive_stream(c_in), receive_stream(s_in));
  a_sent.get();
  b_sent.get();
  EXPECT_EQ(a_got.get(), total) << "bytes b sent that a read intact, in order " << counts(h);
  EXPECT_EQ(b_got.get(), total) << "bytes a sent that b read intact, in order " << counts(h);
}

REEF_TEST(tcp, a_connection_carries_bytes_both_ways_and_closes_to_nothing) {
  tcp_hosts h;
  auto server = h.tcp_b.listen(at(0, 80), {});
  EXPECT_EQ(server.local_address(), at(b_ip, 80));
  auto [c, s] = co_await open_connection(h, server);
  EXPECT_EQ(c.remote_address(), at(b_ip, 80));
  EXPECT_EQ(s.remote_address, c.local_address());
  EXPECT_GE(c.local_address().port(), 32768);
  {
    auto c_in = c.input();
    auto c_out = c.output();
    auto s_in = s.connection.input();
    auto s_out = s.connection.output();
    co_await c_out.write("hello");
    co_await c_out.flush();
    EXPECT_EQ(text_of(co_await s_in.read()), "hello");
    co_await s_out.write("world");
    co_await s_out.flush();
    EXPECT_EQ(text_of(co_await c_in.read()), "world");
    // Half-close: the server reads the end, and can still answer.
    co_await c_out.close();
    EXPECT_TRUE((co_await s_in.read()).empty());
    co_await s_out.write("bye");
    co_await s_out.close();
    EXPECT_EQ(text_of(co_await c_in.read()), "bye");
    EXPECT_TRUE((co_await c_in.read()).empty());
  }
  c = connected_socket();
  s.connection = connected_socket();
  co_await h.settle();
  EXPECT_EQ(h.tcp_a.stats().connections, 0u);
  EXPECT_EQ(h.tcp_b.stats().connections, 0u);
  EXPECT_EQ(h.tcp_a.stats().timers_armed, 0u);
  EXPECT_EQ(h.tcp_a.stats().connections_closed, 1u);
  EXPECT_EQ(h.tcp_b.stats().connections_closed, 1u);
  co_await h.stop();
}

REEF_TEST(tcp, a_port_nobody_listens_on_answers_with_a_reset) {
  tcp_hosts h;
  try {
    co_await h.tcp_a.connect(at(b_ip, 81), {});
    ADD_FAILURE() << "connected to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED) << e.what();
  }
  EXPECT_EQ(h.tcp_b.stats().resets_for_no_socket, 1u);
  co_await h.settle();
  co_await h.stop();
}

REEF_TEST(tcp, syn_cookies_carry_connections_past_a_full_syn_backlog) {
  tcp_layer_options b_options = quick();
  b_options.limits.syn_backlog = 0;  // every SYN gets a cookie
  tcp_hosts h({}, quick(), b_options);
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto [c, s] = co_await open_connection(h, server);
  EXPECT_EQ(h.tcp_b.stats().syn_cookies_sent, 1u);
  EXPECT_EQ(h.tcp_b.stats().syn_cookies_accepted, 1u);
  EXPECT_EQ(h.tcp_a.stats().segments.retransmitted, 0u) << "the cookie's window takes the first data";
  // The options the cookie carried (in the timestamps).
  const tcp_tuple on_b{b_ip, 80, a_ip, c.local_address().port()};
  const std::optional<tcp_info> i = h.tcp_b.info(on_b);
  EXPECT_TRUE(i && i->timestamps && i->sack);
  EXPECT_TRUE(i && i->snd_wscale == 7) << "a's shift, carried by the cookie";
  EXPECT_TRUE(i && i->snd_mss == 1460 - 12);
  EXPECT_TRUE(i && i->rcv_wnd > 0) << "the window the cookie's SYN-ACK offered";
  {
    auto c_out = c.output();
    auto s_in = s.connection.input();
    co_await c_out.write(std::string(100000, 'x'));
    co_await c_out.close();
    std::size_t n = 0;
    for (;;) {
      auto b = co_await s_in.read();
      if (b.empty()) break;
      n += b.size();
    }
    EXPECT_EQ(n, 100000u);
  }
  co_await h.stop();
}

REEF_TEST(tcp, a_connect_to_nobody_times_out) {
  tcp_hosts h({}, quick(), quick(), quick_to_give_up(a_ip));
  try {
    co_await h.tcp_a.connect(at(0x0a000009, 80), {.timeout = 100ms});
    ADD_FAILURE() << "connected to nobody";
  } catch (const timed_out_error&) {
  }
  co_await h.settle();
  EXPECT_EQ(h.tcp_a.stats().connections, 0u);
  co_await h.stop();
}

REEF_TEST(tcp, a_closed_listener_fails_its_accept_and_resets_new_syns) {
  tcp_hosts h;
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto accepted = server.accept();
  try {
    h.tcp_b.listen(at(0, 80), {});
    ADD_FAILURE() << "a second listener on the port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
  server.abort_accept();
  try {
    co_await std::move(accepted);
    ADD_FAILURE() << "accept() after abort_accept()";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNABORTED);
  }
  try {
    co_await h.tcp_a.connect(at(b_ip, 80), {});
    ADD_FAILURE() << "connected to a closed listener";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
  }
  co_await h.stop();
}

REEF_TEST(tcp, an_abort_reads_as_the_end_and_fails_the_peers_writes) {
  tcp_hosts h;
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto [c, s] = co_await open_connection(h, server);
  auto s_in = s.connection.input();
  auto s_out = s.connection.output();
  c.set_linger(0s);  // closing resets
  c = connected_socket();
  EXPECT_TRUE((co_await s_in.read()).empty()) << "a reset reads as the end";
  bool failed = false;
  try {
    co_await s_out.write("anyone?");
    co_await s_out.flush();
  } catch (const std::system_error& e) {
    failed = true;
    EXPECT_EQ(e.code().value(), ECONNRESET);
  }
  EXPECT_TRUE(failed);
  co_await h.stop();
}

// 100 MB each way (under a sanitizer, which is several times slower, 16 MiB).
#if defined(REEF_ASAN) || defined(REEF_TSAN)
constexpr std::uint64_t clean_bytes = 16 << 20;
#else
constexpr std::uint64_t clean_bytes = 100'000'000;
#endif

REEF_TEST(tcp, bytes_cross_a_clean_link_both_ways_intact) {
  tcp_hosts h;
  co_await exchange(h, clean_bytes);
  co_await h.settle();
  co_await h.stop();
}

// Over a link that corrupts frames, some were caught by a checksum (TCP's
// or IPv4's) rather than delivered.
void expect_corruption_caught(tcp_hosts& h) {
  EXPECT_GT(h.tcp_a.stats().bad_checksums + h.tcp_b.stats().bad_checksums + h.a.stats().ipv4_errors +
                h.b.stats().ipv4_errors,
            0u)
      << "corrupted frames are caught by a checksum";
}

REEF_TEST(tcp, bytes_cross_a_lossy_reordering_duplicating_corrupting_link_intact) {
  virtual_link_options link;
  link.faults.loss = 0.10;
  link.faults.duplicate = 0.02;
  link.faults.reorder = 0.05;
  link.faults.corrupt = 0.02;
  link.faults.seed = 11;
  tcp_hosts h(link);
  co_await exchange(h, 1 << 20);
  EXPECT_GT(h.tcp_a.stats().segments.retransmitted + h.tcp_b.stats().segments.retransmitted, 0u);
  expect_corruption_caught(h);
  co_await h.settle();
  co_await h.stop();
}

// The offloads veth gives Linux: checksums left undone between the ends,
// TSO segments crossing whole.
device_offloads veth_offloads() {
  return device_offloads{.rx_checksum_verified = true, .tx_checksum = true, .tso = true, .lro = true};
}

REEF_TEST(tcp, bytes_cross_an_offloading_link_intact_in_long_segments) {
  tcp_hosts h({.offloads = veth_offloads()});
  co_await exchange(h, clean_bytes);
  const std::uint64_t wire_segments = clean_bytes / (1460 - 12);
  EXPECT_LT(h.tcp_b.stats().segments.segments_received, wire_segments / 4) << "the segments crossed long (TSO)";
  EXPECT_EQ(h.tcp_a.stats().bad_checksums + h.tcp_b.stats().bad_checksums, 0u);
  co_await h.settle();
  co_await h.stop();
}

REEF_TEST(tcp, over_a_faulty_link_segments_the_device_cuts_cross_intact) {
  // The link cuts the long segments and sums every piece (as a wire
  // carries them), then loses, reorders and corrupts some.
  virtual_link_options link;
  link.offloads = veth_offloads();
  link.faults.loss = 0.05;
  link.faults.reorder = 0.05;
  link.faults.corrupt = 0.02;
  link.faults.seed = 5;
  tcp_hosts h(link);
  co_await exchange(h, 1 << 20);
  expect_corruption_caught(h);
  // Every piece fits the MTU, SACK blocks and all (the MSS less them).
  EXPECT_EQ(h.link.stats().too_long, 0u);
  EXPECT_EQ(h.a.reassembly().stats().fragments + h.b.reassembly().stats().fragments, 0u);
  co_await h.settle();
  co_await h.stop();
}

REEF_TEST(tcp, the_mss_follows_the_mtu) {
  // MTU 1000: an MSS of 960 (the headers less), 948 with timestamps;
  // and no IPv4 fragment crosses.
  tcp_hosts h({.mtu = 1000});
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto [c, s] = co_await open_connection(h, server);
  const tcp_tuple on_b{b_ip, 80, a_ip, c.local_address().port()};
  const std::optional<tcp_info> i = h.tcp_b.info(on_b);
  EXPECT_TRUE(i && i->snd_mss == 1000 - 40 - 12);
  auto c_out = c.output();
  auto s_in = s.connection.input();
  auto sending = send_stream(c_out, 100000);
  EXPECT_EQ(co_await receive_stream(s_in), 100000u);
  co_await std::move(sending);
  EXPECT_EQ(h.b.reassembly().stats().fragments, 0u) << "segments fit the MTU: nothing to reassemble";
  tcp_layer_options tiny;
  tiny.mss = 40;
  EXPECT_THROW(tcp_layer(h.a, tiny), std::invalid_argument) << "an MSS below 88";
  co_await h.stop();
}

REEF_TEST(tcp, bytes_cross_a_slow_far_link_intact) {
  // 1 Mbit/s each way and 50 ms each way: the window, not the link's
  // queue, must pace the sender (past the queue's room frames are
  // dropped, and recovered).
  virtual_link_options link;
  link.faults.rate_bytes_per_second = 125000;
  link.faults.delay = 50ms;
  link.queue_frames_max = 64;
  tcp_hosts h(link);
  co_await exchange(h, 96 << 10);
  co_await h.settle();
  co_await h.stop();
}

REEF_TEST(tcp, at_the_connection_limit_the_oldest_time_wait_gives_way) {
  tcp_layer_options a_options = quick();
  a_options.connection.time_wait = std::chrono::seconds(60);  // the client's closes all wait
  a_options.limits.connections_max = 4;
  tcp_hosts h({}, a_options);
  auto server = h.tcp_b.listen(at(0, 80), {});
  for (int i = 0; i < 10; ++i) {
    auto [c, s] = co_await open_connection(h, server);
    auto c_out = c.output();
    auto c_in = c.input();
    auto s_out = s.connection.output();
    auto s_in = s.connection.input();
    co_await c_out.close();  // the client closes first: TIME-WAIT is its
    EXPECT_TRUE((co_await s_in.read()).empty());
    co_await s_out.close();
    EXPECT_TRUE((co_await c_in.read()).empty());
  }
  co_await wait_until([&] { return h.tcp_a.stats().connections_closed >= 6; });
  const tcp_layer_stats a = h.tcp_a.stats();
  EXPECT_LE(a.connections, 4u) << "the limit holds";
  EXPECT_GE(a.time_wait_evicted, 6u) << "ten connections through a table of four";
  co_await h.stop();
}

REEF_TEST(tcp, past_the_shards_byte_budget_a_connection_holding_bytes_takes_no_more) {
  tcp_layer_options b_options = quick();
  b_options.limits.buffered_bytes_max = 32 << 10;
  tcp_hosts h({}, quick(), b_options);
  auto server = h.tcp_b.listen(at(0, 80), {});
  auto [c, s] = co_await open_connection(h, server);
  auto c_out = c.output();
  auto s_in = s.connection.input();
  // The writer goes on while nobody reads: B holds what its budget (and
  // a window) lets in, drops the rest, and counts it.
  auto writing = send_stream(c_out, 1 << 20);
  co_await wait_until([&] { return h.tcp_b.stats().memory_drops > 0; });
  EXPECT_GT(h.tcp_b.stats().memory_drops, 0u);
  EXPECT_LE(h.tcp_b.stats().buffered_bytes, (32u << 10) + (64u << 10)) << "the budget and one window at most";
  // Reading again takes everything, intact.
  EXPECT_EQ(co_await receive_stream(s_in), 1u << 20);
  co_await std::move(writing);
  co_await h.stop();
}

REEF_TEST(tcp, ten_thousand_connections_open_and_close_and_leave_nothing) {
  constexpr int connections = 10000;
  tcp_hosts h;
  auto server = h.tcp_b.listen(at(0, 80), {});
  // The server: each connection answers "ok" and closes.
  auto serve = [&]() -> future<> {
    for (int i = 0; i < connections; ++i) {
      accept_result s = co_await server.accept();
      auto in = s.connection.input();
      auto out = s.connection.output();
      (void)co_await in.read();
      co_await out.write("ok");
      co_await out.close();
    }
  };
  auto served = serve();
  for (int i = 0; i < connections; ++i) {
    connected_socket c = co_await h.tcp_a.connect(at(b_ip, 80), {});
    auto in = c.input();
    auto out = c.output();
    co_await out.write("hi");
    co_await out.flush();
    EXPECT_EQ(text_of(co_await in.read()), "ok");
    co_await out.close();
  }
  co_await std::move(served);
  co_await h.settle();
  const tcp_layer_stats a = h.tcp_a.stats();
  const tcp_layer_stats b = h.tcp_b.stats();
  EXPECT_EQ(a.connections_opened, std::uint64_t{connections});
  EXPECT_EQ(a.connections_closed, std::uint64_t{connections});
  EXPECT_EQ(b.connections_closed, std::uint64_t{connections});
  EXPECT_EQ(a.connections + b.connections + a.timers_armed + b.timers_armed + a.buffered_bytes + b.buffered_bytes,
            0u);
  co_await h.stop();
}

}  // namespace
}  // namespace reef::tcpip
