// DHCP: messages byte by byte and hostile replies refused with their
// reason; the client against a small scripted server over the virtual
// link: a lease (discover, offer, request, ack), renewals at T1, a NAK
// that starts the search again, replies for others and malformed ones
// ignored and counted, a lease that ends when the server goes quiet, and
// no server at all.
#include "tcpip/dhcp.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "tcpip/testing/two_hosts.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;
using namespace reef::tcpip::testing;

const ethernet_address client_mac{{0x02, 0, 0, 0, 0, 0x01}};  // the link's end 0

// A server's reply, by hand.
std::vector<std::uint8_t> reply(std::uint8_t type, std::uint32_t xid, std::uint32_t yiaddr,
                                std::vector<std::uint8_t> options, ethernet_address mac = client_mac) {
  std::vector<std::uint8_t> b(240, 0);
  b[0] = 2;
  b[1] = 1;
  b[2] = 6;
  wire::put32(b, 4, xid);
  wire::put32(b, 16, yiaddr);
  std::copy(mac.bytes.begin(), mac.bytes.end(), b.begin() + 28);
  wire::put32(b, 236, dhcp_message::magic_cookie);
  b.push_back(53);
  b.push_back(1);
  b.push_back(type);
  b.insert(b.end(), options.begin(), options.end());
  b.push_back(255);
  return b;
}

std::vector<std::uint8_t> address_option(std::uint8_t code, std::uint32_t a) {
  return {code, 4, static_cast<std::uint8_t>(a >> 24), static_cast<std::uint8_t>(a >> 16),
          static_cast<std::uint8_t>(a >> 8), static_cast<std::uint8_t>(a)};
}

std::vector<std::uint8_t> operator+(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(dhcp_message, a_request_is_written_byte_by_byte) {
  dhcp_message m;
  m.type = dhcp_type::request;
  m.xid = 0x01020304;
  m.broadcast = true;
  m.chaddr = client_mac;
  m.requested_ip = 0x0a000032;
  m.server_id = 0x0a000002;
  const auto b = m.write();
  ASSERT_EQ(b.size(), 300u);
  EXPECT_EQ(b[0], 1) << "BOOTREQUEST";
  EXPECT_EQ(b[1], 1);
  EXPECT_EQ(b[2], 6);
  EXPECT_EQ(wire::get32(b, 4), 0x01020304u);
  EXPECT_EQ(wire::get16(b, 10), 0x8000) << "broadcast flag";
  EXPECT_EQ(b[33], 0x01) << "chaddr";
  EXPECT_EQ(wire::get32(b, 236), dhcp_message::magic_cookie);
  const std::vector<std::uint8_t> options(b.begin() + 240, b.begin() + 240 + 3 + 6 + 6 + 8 + 1);
  EXPECT_EQ(options, (std::vector<std::uint8_t>{53, 1, 3, 50, 4, 10, 0, 0, 50, 54, 4, 10, 0, 0, 2, 55, 6, 1, 3, 6,
                                                51, 58, 59, 255}));
}

TEST(dhcp_message, an_ack_is_read_with_its_options) {
  auto b = reply(5, 7, 0x0a000032,
                 address_option(54, 0x0a000002) + address_option(1, 0xffffff00) + address_option(3, 0x0a000001) +
                     std::vector<std::uint8_t>{0, 0} +  // pads
                     std::vector<std::uint8_t>{6, 8, 8, 8, 8, 8, 1, 1, 1, 1} + address_option(51, 3600) +
                     std::vector<std::uint8_t>{200, 2, 0xaa, 0xbb});  // an option nobody uses
  dhcp_message m;
  ASSERT_EQ(dhcp_message::parse(b, m), dhcp_error::none);
  EXPECT_EQ(m.type, dhcp_type::ack);
  EXPECT_EQ(m.xid, 7u);
  EXPECT_EQ(m.yiaddr, 0x0a000032u);
  EXPECT_EQ(m.chaddr, client_mac);
  EXPECT_EQ(m.server_id, 0x0a000002u);
  EXPECT_EQ(m.netmask, 0xffffff00u);
  EXPECT_EQ(m.routers, std::vector<std::uint32_t>{0x0a000001});
  EXPECT_EQ(m.dns_servers, (std::vector<std::uint32_t>{0x08080808, 0x01010101}));
  EXPECT_EQ(m.lease_seconds, 3600u);
}

TEST(dhcp_message, hostile_replies_are_refused_with_their_reason) {
  dhcp_message m;
  auto good = reply(2, 7, 0x0a000032, address_option(54, 0x0a000002));
  ASSERT_EQ(dhcp_message::parse(good, m), dhcp_error::none);
  for (std::size_t n : {0ul, 1ul, 100ul, 239ul}) {
    EXPECT_EQ(dhcp_message::parse(std::span(good).first(n), m), dhcp_error::truncated) << n;
  }
  auto request = good;
  request[0] = 1;
  EXPECT_EQ(dhcp_message::parse(request, m), dhcp_error::not_a_reply);
  auto token_ring = good;
  token_ring[1] = 6;
  EXPECT_EQ(dhcp_message::parse(token_ring, m), dhcp_error::not_a_reply);
  auto bootp = good;
  bootp[236] = 0;
  EXPECT_EQ(dhcp_message::parse(bootp, m), dhcp_error::bad_cookie);
  // An option whose length runs past the end, with and without an end.
  auto past = reply(2, 7, 1, {54, 200, 1, 2});
  EXPECT_EQ(dhcp_message::parse(past, m), dhcp_error::bad_option);
  auto cut = reply(2, 7, 1, {});
  cut.pop_back();
  cut.push_back(54);  // a code, no length
  EXPECT_EQ(dhcp_message::parse(cut, m), dhcp_error::bad_option);
  EXPECT_EQ(dhcp_message::parse(reply(2, 7, 1, {54, 3, 1, 2, 3}), m), dhcp_error::bad_option) << "a 3-byte address";
  EXPECT_EQ(dhcp_message::parse(reply(2, 7, 1, {3, 6, 1, 2, 3, 4, 5, 6}), m), dhcp_error::bad_option);
  EXPECT_EQ(dhcp_message::parse(reply(2, 7, 1, {51, 0}), m), dhcp_error::bad_option);
  EXPECT_EQ(dhcp_message::parse(reply(2, 7, 1, address_option(1, 0xff00ff00)), m), dhcp_error::bad_netmask);
  auto two_types = reply(2, 7, 1, {53, 2, 1, 2});
  EXPECT_EQ(dhcp_message::parse(two_types, m), dhcp_error::bad_option);
  auto no_type = reply(2, 7, 1, {});
  no_type[240] = 0;  // the type option becomes pads
  no_type[241] = 0;
  no_type[242] = 0;
  EXPECT_EQ(dhcp_message::parse(no_type, m), dhcp_error::no_type);
  EXPECT_EQ(dhcp_message::parse(reply(9, 7, 1, {}), m), dhcp_error::bad_option) << "type 9";
}

// A scripted DHCP server on host B (10.0.0.2), port 67.
struct server {
  explicit server(two_hosts& h) : udp(h.b), channel(udp.make_channel(at(0, 67))) {}
  static socket_address at(std::uint32_t ip, std::uint16_t port) {
    in_addr a{};
    a.s_addr = htonl(ip);
    return socket_address(inet_address(a), port);
  }
  // Answers until closed: `answer(message)` says what to send (nothing if
  // empty), to the client's broadcast address or, for a renewal, its own.
  template <typename Answer>
  future<> serve(Answer answer) {
    for (;;) {
      udp_datagram d;
      try {
        d = co_await channel.receive();
      } catch (const std::system_error&) {
        co_return;
      }
      auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(d.data.get()), d.data.size());
      if (bytes.size() < 244 || bytes[0] != 1) continue;
      const std::uint32_t xid = wire::get32(bytes, 4);
      const std::uint32_t ciaddr = wire::get32(bytes, 12);
      std::uint8_t type = 0;
      for (std::size_t at = 240; at + 2 < bytes.size() && bytes[at] != 255; at += 2 + bytes[at + 1]) {
        if (bytes[at] == 53) type = bytes[at + 2];
      }
      requests.push_back(type);
      for (auto& r : answer(type, xid, ciaddr)) {
        const std::uint32_t to = ciaddr != 0 ? ciaddr : 0xffffffff;
        co_await channel.send(at(to, 68), packet::copy_of(std::string_view(
                                              reinterpret_cast<const char*>(r.data()), r.size())));
      }
    }
  }
  udp_layer udp;
  udp_channel channel;
  std::vector<std::uint8_t> requests;  // message types, in order
};

std::vector<std::uint8_t> lease_options(std::uint32_t lease = 2, std::uint32_t renew = 1, std::uint32_t rebind = 2) {
  return address_option(54, b_ip) + address_option(1, 0xffffff00) + address_option(3, b_ip) +
         address_option(51, lease) + address_option(58, renew) + address_option(59, rebind);
}

// The client on host A, which starts without an address; every lease is
// applied to A's interface.
struct client_side {
  explicit client_side(two_hosts& h, dhcp_options options = {.first_retry = 100ms, .retry_max = 400ms,
                                                              .timeout = 10s})
      : udp(h.a),
        client(h.a, udp, options, [&h, this](const dhcp_lease* lease) {
          ++applied;
          if (lease == nullptr) {
            ++ended;
            h.a.set_address(0, 0xffffff00, std::nullopt);
          } else {
            h.a.set_address(lease->address, lease->netmask, lease->gateway);
          }
          return make_ready_future<>();
        }) {}
  udp_layer udp;
  dhcp_client client;
  int applied = 0;
  int ended = 0;  // leases given up
};

REEF_TEST(dhcp_client, leases_an_address_and_renews_it_from_the_server_at_t1) {
  two_hosts h({}, config_of(0));
  server s(h);
  auto serving = s.serve([](std::uint8_t type, std::uint32_t xid, std::uint32_t) {
    std::vector<std::vector<std::uint8_t>> out;
    if (type == 1) out.push_back(reply(2, xid, 0x0a000032, lease_options()));
    if (type == 3) out.push_back(reply(5, xid, 0x0a000032, lease_options()));
    return out;
  });
  client_side c(h);
  dhcp_lease lease = co_await c.client.acquire();
  EXPECT_EQ(lease.address, 0x0a000032u);
  EXPECT_EQ(lease.netmask, 0xffffff00u);
  EXPECT_EQ(lease.gateway, b_ip);
  EXPECT_EQ(lease.server, b_ip);
  EXPECT_EQ(lease.lease, 2s);
  EXPECT_EQ(h.a.address(), 0x0a000032u);
  // T1 is a second: a renewal, sent to the server from the address.
  co_await wait_until([&] { return c.client.stats().leases >= 2; }, 5000ms);
  EXPECT_GE(c.client.stats().leases, 2u);
  EXPECT_EQ(c.client.stats().expired, 0u);
  EXPECT_EQ(h.a.address(), 0x0a000032u);
  EXPECT_GE(s.requests.size(), 3u);
  if (s.requests.size() < 3) s.requests.resize(3);
  EXPECT_EQ(std::vector<std::uint8_t>(s.requests.begin(), s.requests.begin() + 3), (std::vector<std::uint8_t>{1, 3, 3}));
  co_await c.client.stop();
  s.channel.close();
  co_await std::move(serving);
  co_await h.stop();
}

REEF_TEST(dhcp_client, a_nak_starts_the_search_again_and_others_replies_are_ignored) {
  two_hosts h({}, config_of(0));
  server s(h);
  int requests = 0;
  auto serving = s.serve([&](std::uint8_t type, std::uint32_t xid, std::uint32_t) {
    std::vector<std::vector<std::uint8_t>> out;
    if (type == 1) {
      out.push_back(reply(2, xid + 1, 0x0a000033, lease_options()));                   // another transaction
      out.push_back(reply(2, xid, 0x0a000034, lease_options(), ethernet_address{{2, 9, 9, 9, 9, 9}}));  // another client
      out.push_back(reply(2, xid, 0x0a000035, {54, 9, 1}));                             // malformed
      out.push_back(reply(2, xid, 0, lease_options()));                                 // no address offered
      out.push_back(reply(2, xid, 0x0a000032, lease_options(60, 30, 50)));
    }
    if (type == 3) out.push_back(reply(++requests == 1 ? 6 : 5, xid, 0x0a000032, lease_options(60, 30, 50)));
    return out;
  });
  client_side c(h);
  dhcp_lease lease = co_await c.client.acquire();
  EXPECT_EQ(lease.address, 0x0a000032u);
  EXPECT_EQ(c.client.stats().naks, 1u);
  EXPECT_GE(c.client.stats().ignored, 4u) << "two rounds of another transaction's and another client's offers";
  EXPECT_GE(c.client.stats().malformed, 4u);
  EXPECT_EQ(std::vector<std::uint8_t>(s.requests.begin(), s.requests.begin() + 4), (std::vector<std::uint8_t>{1, 3, 1, 3}));
  co_await c.client.stop();
  s.channel.close();
  co_await std::move(serving);
  co_await h.stop();
}

REEF_TEST(dhcp_client, a_lease_the_server_stops_renewing_ends_and_the_address_goes) {
  two_hosts h({}, config_of(0));
  server s(h);
  bool quiet = false;
  auto serving = s.serve([&](std::uint8_t type, std::uint32_t xid, std::uint32_t) {
    std::vector<std::vector<std::uint8_t>> out;
    if (quiet) return out;
    if (type == 1) out.push_back(reply(2, xid, 0x0a000032, lease_options()));
    if (type == 3) {
      out.push_back(reply(5, xid, 0x0a000032, lease_options()));
      quiet = true;
    }
    return out;
  });
  client_side c(h);
  co_await c.client.acquire();
  EXPECT_EQ(h.a.address(), 0x0a000032u);
  co_await wait_until([&] { return c.client.stats().expired == 1; }, 6000ms);
  EXPECT_EQ(c.client.stats().expired, 1u);
  EXPECT_EQ(h.a.address(), 0u) << "the lease ended";
  co_await c.client.stop();
  s.channel.close();
  co_await std::move(serving);
  co_await h.stop();
}

// A NAK to a renewal ends the lease at once, long before it would run
// out (RFC 2131 4.4.5).
REEF_TEST(dhcp_client, a_nak_to_a_renewal_ends_the_lease_at_once) {
  two_hosts h({}, config_of(0));
  server s(h);
  auto serving = s.serve([&](std::uint8_t type, std::uint32_t xid, std::uint32_t ciaddr) {
    std::vector<std::vector<std::uint8_t>> out;
    if (type == 1) out.push_back(reply(2, xid, 0x0a000032, lease_options(600, 1, 500)));
    if (type == 3) out.push_back(reply(ciaddr == 0 ? 5 : 6, xid, 0x0a000032, lease_options(600, 1, 500)));
    return out;
  });
  client_side c(h);
  co_await c.client.acquire();
  co_await wait_until([&] { return c.client.stats().expired == 1; }, 5000ms);
  EXPECT_EQ(c.client.stats().expired, 1u) << "the lease runs 600 s: only the NAK ends it";
  EXPECT_GE(c.client.stats().naks, 1u);
  EXPECT_EQ(c.ended, 1) << "the address was given up";
  co_await c.client.stop();
  s.channel.close();
  co_await std::move(serving);
  co_await h.stop();
}

REEF_TEST(dhcp_client, without_a_server_acquire_times_out) {
  two_hosts h({}, config_of(0));
  client_side c(h, {.first_retry = 50ms, .retry_max = 100ms, .timeout = 400ms});
  try {
    co_await c.client.acquire();
    ADD_FAILURE() << "a lease from nobody";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ETIMEDOUT);
  }
  EXPECT_GE(c.client.stats().sent, 3u) << "discoveries are retried";
  co_await c.client.stop();
  co_await h.stop();
}

}  // namespace
}  // namespace reef::tcpip
