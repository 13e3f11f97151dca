// UDP on the native stack over the virtual link: datagrams both ways with
// their source, one over the MTU, port unreachable for a closed port, a
// full receive queue, and binding errors.
#include "tcpip/udp.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "tcpip/icmp_header.h"
#include "tcpip/udp_header.h"
#include "tcpip/virtual_link.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t a_ip = 0x0a000001;
constexpr std::uint32_t b_ip = 0x0a000002;

interface_config config_of(std::uint32_t address) {
  interface_config c;
  c.address = address;
  c.tick = 5ms;
  c.arp.first_retry = 20ms;
  return c;
}

struct two_hosts {
  explicit two_hosts(virtual_link_options options = {}, udp_limits limits = {})
      : link(std::move(options)),
        a(link.end(0), link.end(0).open_queue(0), config_of(a_ip)),
        b(link.end(1), link.end(1).open_queue(0), config_of(b_ip)),
        udp_a(a, limits),
        udp_b(b, limits) {
    a.start();
    b.start();
  }
  future<> stop() {
    co_await a.stop();
    co_await b.stop();
  }
  virtual_link link;
  ipv4_interface a;
  ipv4_interface b;
  udp_layer udp_a;
  udp_layer udp_b;
};

socket_address at(std::uint32_t ip, std::uint16_t port) {
  in_addr a{};
  a.s_addr = htonl(ip);
  return socket_address(inet_address(a), port);
}

std::string text_of(const udp_datagram& d) { return std::string(d.data.get(), d.data.size()); }

REEF_TEST(udp, datagrams_go_both_ways_with_their_source) {
  two_hosts h;
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

REEF_TEST(udp, a_closed_port_is_answered_with_port_unreachable) {
  two_hosts h;
  std::vector<std::uint16_t> unreachable_ports;
  h.a.set_handler(1, [&](const ipv4_header&, packet data) {
    icmp_header icmp;
    ASSERT_EQ(icmp_header::parse(data, icmp), icmp_error::none);
    ASSERT_EQ(icmp.type, static_cast<std::uint8_t>(icmp_type::destination_unreachable));
    EXPECT_EQ(icmp.code, static_cast<std::uint8_t>(icmp_unreachable::port));
    // The quoted datagram: its IP header, then the UDP header's 8 bytes.
    auto bytes = data.linearize();
    std::span<const std::uint8_t> b(reinterpret_cast<const std::uint8_t*>(bytes.get()), bytes.size());
    ipv4_header quoted;
    ASSERT_EQ(ipv4_header::parse_quoted(b.subspan(8), quoted), ipv4_error::none);
    EXPECT_EQ(quoted.destination, b_ip);
    unreachable_ports.push_back(wire::get16(b, 8 + 20 + 2));
  });
  auto client = h.udp_a.make_channel(at(0, 0));
  co_await client.send(at(b_ip, 9999), "anyone?");
  for (int i = 0; i < 2000 && unreachable_ports.empty(); ++i) co_await sleep(1ms);
  EXPECT_EQ(unreachable_ports, std::vector<std::uint16_t>{9999});
  EXPECT_EQ(h.udp_b.stats().no_port, 1u);
  client.close();
  co_await h.stop();
}

REEF_TEST(udp, a_full_queue_drops_and_counts) {
  two_hosts h({}, {.receive_queue_max = 4});
  auto server = h.udp_b.make_channel(at(0, 7));
  auto client = h.udp_a.make_channel(at(0, 0));
  for (int i = 0; i < 10; ++i) co_await client.send(at(b_ip, 7), std::to_string(i));
  for (int i = 0; i < 2000 && h.udp_b.stats().received + h.udp_b.stats().queue_full < 10; ++i) co_await sleep(1ms);
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

REEF_TEST(udp, binding_errors_are_clear) {
  two_hosts h;
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
