// Two IPv4 interfaces over the virtual link, each on this shard: ARP
// resolution, ping, a datagram fragmented and reassembled, the errors a
// send can end in, and frames of garbage that are counted and forgotten.
#include "tcpip/ipv4_interface.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <random>
#include <string>
#include <system_error>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/with_timeout.h"
#include "core/testing/test.h"
#include "tcpip/arp_message.h"
#include "tcpip/checksum.h"
#include "tcpip/testing/two_hosts.h"
#include "tcpip/icmp_header.h"
#include "tcpip/virtual_link.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

using namespace reef::tcpip::testing;

packet echo_request(std::uint16_t sequence, std::string_view data) {
  std::string m(icmp_header::size + data.size(), '\0');
  auto b = std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(m.data()), m.size());
  icmp_header{static_cast<std::uint8_t>(icmp_type::echo_request), 0, 0, 0x4242, sequence}.write(b);
  std::copy(data.begin(), data.end(), m.begin() + icmp_header::size);
  wire::put16(b, 2, internet_checksum(b));
  return packet::copy_of(m);
}

REEF_TEST(ipv4_interface, a_ping_resolves_its_address_and_is_answered) {
  two_hosts h;
  std::vector<std::string> replies;
  h.a.set_handler(1, [&](const ipv4_header& ip, packet data, checksum_status) {
    icmp_header icmp;
    ASSERT_EQ(icmp_header::parse(data, icmp), icmp_error::none);
    EXPECT_EQ(ip.source, b_ip);
    EXPECT_EQ(icmp.type, static_cast<std::uint8_t>(icmp_type::echo_reply));
    EXPECT_EQ(icmp.id, 0x4242);
    auto bytes = data.linearize();
    replies.push_back(std::to_string(icmp.sequence) + ":" + std::string(bytes.get() + 8, bytes.size() - 8));
  });
  co_await h.a.send(b_ip, 1, echo_request(1, "hello"));
  co_await wait_until([&] { return replies.size() == 1; });
  const auto requests = h.a.arp().stats().requests_sent;
  co_await h.a.send(b_ip, 1, echo_request(2, "again"));
  co_await wait_until([&] { return replies.size() == 2; });
  EXPECT_EQ(replies, (std::vector<std::string>{"1:hello", "2:again"}));
  EXPECT_EQ(h.b.stats().echo_replies_sent, 2u);
  EXPECT_GE(h.b.stats().arp_replies_sent, 1u);
  EXPECT_EQ(h.a.arp().stats().requests_sent, requests) << "the second ping found the address known";
  EXPECT_EQ(h.a.arp().lookup(b_ip, lowres_clock::now()), h.link.end(1).info().mac);
  co_await h.stop();
}

REEF_TEST(ipv4_interface, a_datagram_over_the_mtu_goes_in_pieces_and_arrives_whole) {
  two_hosts h({.mtu = 576});
  std::string got;
  h.b.set_handler(17, [&](const ipv4_header& ip, packet data, checksum_status) {
    EXPECT_EQ(ip.source, a_ip);
    auto bytes = data.linearize();
    got.assign(bytes.get(), bytes.size());
  });
  std::string sent(4000, ' ');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  co_await h.a.send(b_ip, 17, packet::copy_of(sent));
  co_await wait_until([&] { return !got.empty(); });
  EXPECT_EQ(got, sent);
  EXPECT_EQ(h.b.reassembly().stats().reassembled, 1u);
  EXPECT_EQ(h.b.reassembly().memory(), 0u);
  try {
    co_await h.a.send(b_ip, 17, packet::copy_of(sent), true);
    ADD_FAILURE() << "a don't-fragment datagram over the MTU went";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EMSGSIZE);
  }
  co_await h.stop();
}

REEF_TEST(ipv4_interface, a_datagram_of_more_pieces_than_the_device_takes_goes_as_one) {
  // (The virtual link asserts that a frame has at most tx_segments_max
  // pieces, as a NIC's descriptors bound them.)
  two_hosts h;
  std::string got;
  h.b.set_handler(17, [&](const ipv4_header&, packet data, checksum_status) {
    auto bytes = data.linearize();
    got.assign(bytes.get(), bytes.size());
  });
  packet many;
  std::string sent;
  for (unsigned i = 0; i < h.link.end(0).info().tx_segments_max * 3; ++i) {
    const std::string piece(5, static_cast<char>('a' + i % 26));
    many.append(packet::copy_of(piece));
    sent += piece;
  }
  co_await h.a.send(b_ip, 17, std::move(many));
  co_await wait_until([&] { return !got.empty(); });
  EXPECT_EQ(got, sent);
  co_await h.stop();
}

REEF_TEST(ipv4_interface, sends_end_in_clear_errors) {
  interface_config with_gateway = quick_to_give_up(a_ip);
  two_hosts h({}, with_gateway);
  auto error_of = [](future<> f) -> future<int> {
    try {
      co_await std::move(f);
    } catch (const std::system_error& e) {
      co_return e.code().value();
    }
    co_return 0;
  };
  // Nobody at 10.0.0.9: three ARP requests, then host unreachable.
  EXPECT_EQ(co_await error_of(h.a.send(0x0a000009, 17, packet::copy_of("x"))), EHOSTUNREACH);
  EXPECT_EQ(h.a.arp().stats().requests_sent, 3u);
  EXPECT_EQ(h.a.stats().unroutable, 1u);
  // Off the network without a gateway.
  EXPECT_EQ(co_await error_of(h.a.send(0xc0a80101, 17, packet::copy_of("x"))), ENETUNREACH);
  // A send still waiting for its address when the interface stops: stop()
  // waits for it to end (failed by the retries), not for ever.
  auto waiting = error_of(h.a.send(0x0a00000a, 17, packet::copy_of("x")));
  co_await with_timeout(lowres_clock::now() + 10s, h.stop());
  EXPECT_EQ(co_await with_timeout(lowres_clock::now() + 10s, std::move(waiting)), EHOSTUNREACH);
  // A stopped interface sends nothing.
  EXPECT_EQ(co_await error_of(h.a.send(b_ip, 17, packet::copy_of("x"))), ENETDOWN);
  // Nor does one not started; and a loopback or multicast address is no
  // destination.
  ipv4_interface idle(h.link.end(0), nullptr, config_of(a_ip));
  EXPECT_EQ(co_await error_of(idle.send(b_ip, 17, packet::copy_of("x"))), ENETDOWN);
  // Through a gateway (b): the datagram goes to b's MAC, which is no router.
  with_gateway.gateway = b_ip;
  two_hosts routed({}, with_gateway);
  EXPECT_EQ(co_await error_of(routed.a.send(0xc0a80101, 17, packet::copy_of("x"))), 0);
  co_await wait_until([&] { return routed.b.stats().not_our_address == 1; });
  EXPECT_EQ(routed.b.stats().not_our_address, 1u);
  EXPECT_EQ(co_await error_of(routed.a.send(0x7f000001, 17, packet::copy_of("x"))), EADDRNOTAVAIL);
  EXPECT_EQ(co_await error_of(routed.a.send(0xe0000001, 17, packet::copy_of("x"))), EADDRNOTAVAIL);
  // To ourselves: delivered here.
  std::string looped;
  routed.a.set_handler(17, [&](const ipv4_header& ip, packet data, checksum_status) {
    EXPECT_EQ(ip.source, a_ip);
    auto b = data.linearize();
    looped.assign(b.get(), b.size());
  });
  EXPECT_EQ(co_await error_of(routed.a.send(a_ip, 17, packet::copy_of("to me"))), 0);
  co_await wait_until([&] { return !looped.empty(); });
  EXPECT_EQ(looped, "to me");
  co_await routed.stop();
}

REEF_TEST(ipv4_interface, garbage_frames_are_counted_and_the_host_still_answers) {
  // b alone on end 1; the test sends raw frames from end 0.
  virtual_link link;
  auto raw = link.end(0).open_queue(0);
  ipv4_interface b(link.end(1), link.end(1).open_queue(0), config_of(b_ip));
  b.start();
  const ethernet_address b_mac = link.end(1).info().mac;
  const ethernet_address raw_mac = link.end(0).info().mac;
  std::mt19937 random(1122);
  constexpr int frames = 3000;
  for (int i = 0; i < frames; ++i) {
    std::vector<std::uint8_t> f(random() % 120);
    for (auto& x : f) x = static_cast<std::uint8_t>(random());
    if (f.size() >= 14 && i % 2 == 0) {
      ethernet_header{i % 4 == 0 ? b_mac : ethernet_address::broadcast(), raw_mac,
                      static_cast<std::uint16_t>(i % 3 == 0 ? ether_type::arp : ether_type::ipv4)}
          .write(f);
      if (f.size() >= 34 && i % 3 != 0) {
        f[14] = 0x45;  // an IPv4 header that often gets past its first checks
        wire::put16(f, 16, static_cast<std::uint16_t>(f.size() - 14));
        wire::put32(f, 30, b_ip);
        wire::put16(f, 24, 0);
        wire::put16(f, 24, internet_checksum(std::span<const std::uint8_t>(f).subspan(14, 20)));
      }
    }
    std::array<tx_frame, 1> one{tx_frame{packet::copy_of(std::string_view(reinterpret_cast<const char*>(f.data()), f.size())), {}}};
    raw->transmit(one);
    if (i % 16 == 0) co_await yield();  // b takes up to 32 frames a poll
  }
  // Each frame reached b, or was counted where it could not (b's queue
  // full: the test sends faster than b polls).
  co_await wait_until([&] { return b.stats().rx_frames + link.stats().overflowed >= frames + 0u; });
  const auto& s = b.stats();
  EXPECT_EQ(s.rx_frames + link.stats().overflowed, std::uint64_t{frames});
  EXPECT_GT(s.ethernet_errors, 0u);
  EXPECT_GT(s.not_ours, 0u);
  EXPECT_GT(s.arp_errors, 0u);
  EXPECT_GT(s.ipv4_errors + s.unknown_protocol, 0u);
  // b still answers: who has 10.0.0.2?
  std::vector<std::uint8_t> request(14 + arp_message::size);
  ethernet_header{ethernet_address::broadcast(), raw_mac, static_cast<std::uint16_t>(ether_type::arp)}.write(request);
  arp_message{arp_message::operation::request, raw_mac, a_ip, ethernet_address(), b_ip}.write(
      std::span<std::uint8_t>(request).subspan(14));
  std::vector<received_frame> drained;
  while (raw->receive(drained, 64) > 0) {
  }
  std::array<tx_frame, 1> ask{tx_frame{packet::copy_of(std::string_view(reinterpret_cast<const char*>(request.data()), request.size())), {}}};
  raw->transmit(ask);
  std::vector<received_frame> answers;
  co_await wait_until([&] {
    raw->receive(answers, 8);
    return !answers.empty();
  });
  bool answered = false;
  for (auto& f : answers) {
    auto bytes = f.frame.linearize();
    std::span<const std::uint8_t> all(reinterpret_cast<const std::uint8_t*>(bytes.get()), bytes.size());
    arp_message m;
    if (all.size() >= 14 + arp_message::size && arp_message::parse(all.subspan(14), m) == arp_error::none &&
        m.op == arp_message::operation::reply && m.sender_ip == b_ip) {
      answered = m.sender_mac == b_mac && m.target_ip == a_ip;
    }
  }
  EXPECT_TRUE(answered) << "no ARP reply after the garbage";
  // An echo request from a broadcast source is not answered (a reply
  // would go to the whole network).
  const auto replies_before = b.stats().echo_replies_sent;
  std::vector<std::uint8_t> ping(14 + 20 + 8);
  ethernet_header{b_mac, raw_mac, static_cast<std::uint16_t>(ether_type::ipv4)}.write(ping);
  ipv4_header ip;
  ip.total_length = 28;
  ip.protocol = 1;
  ip.source = 0x0a0000ff;  // 10.0.0.255
  ip.destination = b_ip;
  ip.write(std::span<std::uint8_t>(ping).subspan(14));
  auto icmp = std::span<std::uint8_t>(ping).subspan(34);
  icmp_header{static_cast<std::uint8_t>(icmp_type::echo_request), 0, 0, 1, 1}.write(icmp);
  wire::put16(icmp, 2, internet_checksum(icmp));
  const auto bad_before = b.stats().bad_source;
  std::array<tx_frame, 1> smurf{tx_frame{packet::copy_of(std::string_view(reinterpret_cast<const char*>(ping.data()), ping.size())), {}}};
  raw->transmit(smurf);
  co_await wait_until([&] { return b.stats().bad_source > bad_before; });
  EXPECT_EQ(b.stats().bad_source, bad_before + 1);
  EXPECT_EQ(b.stats().echo_replies_sent, replies_before);
  // An ARP message that gives b's own MAC to another address is refused.
  const auto arp_errors_before = b.stats().arp_errors;
  arp_message{arp_message::operation::reply, b_mac, a_ip, b_mac, b_ip}.write(std::span<std::uint8_t>(request).subspan(14));
  std::array<tx_frame, 1> lie{tx_frame{packet::copy_of(std::string_view(reinterpret_cast<const char*>(request.data()), request.size())), {}}};
  raw->transmit(lie);
  co_await wait_until([&] { return b.stats().arp_errors > arp_errors_before; });
  EXPECT_EQ(b.arp().lookup(a_ip, lowres_clock::now()), raw_mac) << "the lie moved the address";
  co_await b.stop();
}

TEST(ipv4_interface, refuses_configurations_that_cannot_work) {
  virtual_link link;
  auto make = [&](interface_config c) { ipv4_interface(link.end(0), nullptr, c); };
  EXPECT_NO_THROW(make(config_of(0))) << "no address yet (DHCP)";
  for (std::uint32_t not_a_host : {0x0a000000u, 0x0a0000ffu, 0x7f000001u, 0xe0000001u}) {
    EXPECT_THROW(make(config_of(not_a_host)), std::invalid_argument) << ipv4_to_string(not_a_host);
  }
  interface_config no_address_but_a_gateway = config_of(0);
  no_address_but_a_gateway.gateway = 0x0a000001;
  EXPECT_THROW(make(no_address_but_a_gateway), std::invalid_argument);
  interface_config holes = config_of(a_ip);
  holes.netmask = 0xff00ff00;
  EXPECT_THROW(make(holes), std::invalid_argument);
  interface_config far_gateway = config_of(a_ip);
  far_gateway.gateway = 0xc0a80101;
  EXPECT_THROW(make(far_gateway), std::invalid_argument);
}

// Without an address (before DHCP): broadcasts go out from 0.0.0.0 and
// broadcasts come in; nothing else is sent. Then an address is set, and
// unicast works from it.
REEF_TEST(ipv4_interface, starts_without_an_address_and_takes_one_later) {
  two_hosts h({}, config_of(0));
  std::vector<std::uint32_t> b_heard_from;
  h.b.set_handler(17, [&](const ipv4_header& ip, packet, checksum_status) { b_heard_from.push_back(ip.source); });
  int a_heard = 0;
  h.a.set_handler(17, [&](const ipv4_header&, packet, checksum_status) { ++a_heard; });
  try {
    co_await h.a.send(b_ip, 17, packet::copy_of("unicast"));
    ADD_FAILURE() << "a unicast without an address";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENETUNREACH);
  }
  co_await h.a.send(0xffffffff, 17, packet::copy_of("broadcast"));
  co_await h.b.send(0xffffffff, 17, packet::copy_of("to all"));
  co_await wait_until([&] { return !b_heard_from.empty() && a_heard == 1; });
  EXPECT_EQ(b_heard_from, std::vector<std::uint32_t>{0});
  EXPECT_EQ(a_heard, 1);
  EXPECT_THROW(h.a.set_address(0x0a0000ff, 0xffffff00, std::nullopt), std::invalid_argument);
  h.a.set_address(0x0a000005, 0xffffff00, std::nullopt);
  co_await h.a.send(b_ip, 17, packet::copy_of("unicast"));
  co_await wait_until([&] { return b_heard_from.size() == 2; });
  EXPECT_EQ(b_heard_from.back(), 0x0a000005u);
  co_await h.stop();
}

}  // namespace
}  // namespace reef::tcpip
