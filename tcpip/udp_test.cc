// UDP on the native stack over the virtual link: datagrams both ways with
// their source, one over the MTU, port unreachable for a closed port (and
// the sender's socket told), a full receive queue, and binding errors.
#include "tcpip/udp.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "tcpip/checksum.h"
#include "tcpip/icmp_header.h"
#include "tcpip/testing/two_hosts.h"
#include "tcpip/udp_header.h"
#include "tcpip/virtual_link.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

using namespace reef::tcpip::testing;

// The two hosts with UDP on each.
struct udp_hosts : two_hosts {
  explicit udp_hosts(virtual_link_options options = {}, udp_limits limits = {})
      : two_hosts(std::move(options)), udp_a(a, limits), udp_b(b, limits) {}
  udp_layer udp_a;
  udp_layer udp_b;
};

constexpr auto& at = ipv4_socket_address;

packet packet_of(const std::vector<std::uint8_t>& bytes) {
  return packet::copy_of(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string text_of(const udp_datagram& d) { return std::string(d.data.get(), d.data.size()); }

REEF_TEST(udp, datagrams_go_both_ways_with_their_source) {
  udp_hosts h;
  auto server = h.udp_b.make_channel(at(0, 7));
  auto client = h.udp_a.make_channel(at(a_ip, 0));
  EXPECT_EQ(server.local_address(), at(b_ip, 7));
  EXPECT_GE(client.local_address().port(), 32768);
  co_await client.send(at(b_ip, 7), "ping");
  udp_datagram got = co_await server.receive();
  EXPECT_EQ(text_of(got), "ping");
  EXPECT_EQ(got.source, client.local_address());
  co_await server.send(got.source, "pong");
  EXPECT_EQ(text_of(co_await client.receive()), "pong");
  // Over the MTU: in pieces on the wire, whole here.
  std::string big(5000, ' ');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + i % 26);
  co_await client.send(at(b_ip, 7), big);
  EXPECT_EQ(text_of(co_await server.receive()), big);
  EXPECT_EQ(h.b.reassembly().stats().reassembled, 1u);
  EXPECT_EQ(h.udp_b.stats().received, 2u);
  server.close();
  client.close();
  co_await h.stop();
}

REEF_TEST(udp, ports_at_the_edges_of_the_port_table_each_get_their_own) {
  // The table is 256 pages of 256: ports either side of a page boundary
  // and the last port are told apart, and a port closed is free again.
  udp_hosts h;
  const std::uint16_t ports[] = {1, 255, 256, 257, 65279, 65280, 65535};
  std::vector<udp_channel> servers;
  for (std::uint16_t p : ports) servers.push_back(h.udp_b.make_channel(at(0, p)));
  auto client = h.udp_a.make_channel(at(0, 0));
  for (std::uint16_t p : ports) co_await client.send(at(b_ip, p), std::to_string(p));
  for (std::size_t i = 0; i < servers.size(); ++i) {
    EXPECT_EQ(text_of(co_await servers[i].receive()), std::to_string(ports[i])) << "port " << ports[i];
  }
  servers.back().close();
  auto again = h.udp_b.make_channel(at(0, 65535));  // (no EADDRINUSE)
  co_await client.send(at(b_ip, 65535), "again");
  EXPECT_EQ(text_of(co_await again.receive()), "again");
  again.close();
  for (auto& server : servers) server.close();
  client.close();
  co_await h.stop();
}

REEF_TEST(udp, a_receive_waiting_when_the_channel_closes_fails_cleanly) {
  udp_hosts h;
  auto server = h.udp_b.make_channel(at(0, 7));
  auto waiting = server.receive();
  EXPECT_FALSE(waiting.available());
  server.close();
  try {
    co_await std::move(waiting);
    ADD_FAILURE() << "a receive on a closed channel returned";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNABORTED);
  }
  try {
    co_await server.receive();
    ADD_FAILURE() << "a receive after close returned";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNABORTED);
  }
  co_await h.stop();
}

REEF_TEST(udp, a_closed_port_is_answered_with_port_unreachable) {
  udp_hosts h;
  // The unreachable goes back to the socket that sent: its next receive
  // fails, naming the peer, and the one after that gets datagrams again.
  auto client = h.udp_a.make_channel(at(0, 0));
  co_await client.send(at(b_ip, 9999), "anyone?");
  try {
    co_await client.receive();
    ADD_FAILURE() << "a receive after sending to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_NE(std::string(e.what()).find("10.0.0.2:9999"), std::string::npos) << e.what();
  }
  EXPECT_EQ(h.udp_b.stats().no_port, 1u);
  EXPECT_EQ(h.a.stats().icmp_errors, 1u);
  EXPECT_EQ(h.udp_a.stats().icmp_errors, 1u);
  auto server = h.udp_b.make_channel(at(0, 9999));
  co_await server.send(client.local_address(), "now someone");
  EXPECT_EQ(text_of(co_await client.receive()), "now someone");
  server.close();
  client.close();
  co_await h.stop();
}

// An unreachable that quotes a datagram we never sent, or is cut short,
// is counted and reaches no socket.
REEF_TEST(udp, icmp_errors_that_quote_no_datagram_of_ours_are_dropped) {
  udp_hosts h;
  auto client = h.udp_a.make_channel(at(0, 0));
  // From B: port unreachable quoting a datagram from 10.0.0.9 (not A).
  std::vector<std::uint8_t> m(8 + 20 + 8, 0);
  m[0] = 3;
  m[1] = 3;
  ipv4_header quoted;
  quoted.protocol = 17;
  quoted.source = 0x0a000009;
  quoted.destination = b_ip;
  quoted.total_length = 28;
  quoted.write(std::span<std::uint8_t>(m).subspan(8));
  wire::put16(m, 8 + 20, client.local_address().port());
  wire::put16(m, 2, internet_checksum(m));
  co_await h.b.send(a_ip, 1, packet_of(m));
  // Cut short: the quoted header without its 8 bytes of data.
  std::vector<std::uint8_t> shortened(8 + 20, 0);
  shortened[0] = 3;
  quoted.source = a_ip;
  quoted.write(std::span<std::uint8_t>(shortened).subspan(8));
  wire::put16(shortened, 2, internet_checksum(shortened));
  co_await h.b.send(a_ip, 1, packet_of(shortened));
  co_await wait_until([&] { return h.a.stats().icmp_errors_dropped == 2; });
  EXPECT_EQ(h.a.stats().icmp_errors_dropped, 2u);
  EXPECT_EQ(h.udp_a.stats().icmp_errors, 0u);
  client.close();
  co_await h.stop();
}

REEF_TEST(udp, a_full_queue_drops_and_counts) {
  udp_hosts h({}, {.receive_queue_max = 4});
  auto server = h.udp_b.make_channel(at(0, 7));
  auto client = h.udp_a.make_channel(at(0, 0));
  for (int i = 0; i < 10; ++i) co_await client.send(at(b_ip, 7), std::to_string(i));
  co_await wait_until([&] { return h.udp_b.stats().received + h.udp_b.stats().queue_full >= 10; });
  EXPECT_EQ(h.udp_b.stats().received, 4u);
  EXPECT_EQ(h.udp_b.stats().queue_full, 6u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(text_of(co_await server.receive()), std::to_string(i));
  server.close();
  // A closed channel's receive fails; its send too.
  try {
    co_await server.receive();
    ADD_FAILURE() << "receive on a closed channel";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNABORTED);
  }
  client.close();
  co_await h.stop();
}

// At the limits: port unreachables past the budget of a second are not
// sent (only counted), and a full ephemeral range refuses a new socket.
REEF_TEST(udp, unreachables_are_rate_limited_and_ephemeral_ports_run_out) {
  udp_hosts h({}, {.ephemeral_first = 40000, .ephemeral_last = 40001, .unreachables_per_second = 3});
  auto client = h.udp_a.make_channel(at(0, 0));
  for (int i = 0; i < 10; ++i) co_await client.send(at(b_ip, 9999), "anyone?");
  co_await wait_until([&] { return h.udp_b.stats().no_port == 10; });
  EXPECT_EQ(h.udp_b.stats().no_port, 10u);
  EXPECT_LE(h.udp_b.stats().unreachables_sent, 3u) << "the budget is 3 a second";
  co_await wait_until([&] { return h.a.stats().icmp_errors == h.udp_b.stats().unreachables_sent; });
  EXPECT_EQ(h.a.stats().icmp_errors, h.udp_b.stats().unreachables_sent);
  EXPECT_EQ(h.udp_a.stats().icmp_errors, 1u) << "one error waits in the socket; the others are not queued behind it";
  // Ports 40000 and 40001 only: the client has one, one is left.
  auto second = h.udp_a.make_channel(at(0, 0));
  EXPECT_EQ(second.local_address().port() + client.local_address().port(), 80001);
  try {
    h.udp_a.make_channel(at(0, 0));
    ADD_FAILURE() << "a third ephemeral port out of two";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
  }
  second.close();
  client.close();
  co_await h.stop();
}

REEF_TEST(udp, binding_errors_are_clear) {
  udp_hosts h;
  auto first = h.udp_b.make_channel(at(0, 53));
  auto code_of = [&](socket_address where) {
    try {
      h.udp_b.make_channel(where);
    } catch (const std::system_error& e) {
      return e.code().value();
    }
    return 0;
  };
  EXPECT_EQ(code_of(at(0, 53)), EADDRINUSE);
  EXPECT_EQ(code_of(at(0x0a000063, 54)), EADDRNOTAVAIL);
  EXPECT_EQ(code_of(socket_address::parse("[::1]:55")), EAFNOSUPPORT);
  first.close();
  EXPECT_EQ(code_of(at(0, 53)), 0) << "a closed channel's port is free again";
  co_await h.stop();
}

}  // namespace
}  // namespace reef::tcpip
