// ARP messages byte by byte, and what is refused.
#include "tcpip/arp_message.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace reef::tcpip {
namespace {

// Who has 10.0.0.1? Tell 10.0.0.2 (02:00:00:00:00:02).
const std::vector<std::uint8_t> request_bytes = {
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,  // Ethernet, IPv4, sizes, request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02,              // sender MAC
    0x0a, 0x00, 0x00, 0x02,                          // sender IP
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,              // target MAC (unknown)
    0x0a, 0x00, 0x00, 0x01,                          // target IP
};

TEST(arp, reads_and_writes_a_request_byte_by_byte) {
  arp_message m;
  ASSERT_EQ(arp_message::parse(request_bytes, m), arp_error::none);
  EXPECT_EQ(m.op, arp_message::operation::request);
  EXPECT_EQ(m.sender_mac.to_string(), "02:00:00:00:00:02");
  EXPECT_EQ(m.sender_ip, 0x0a000002u);
  EXPECT_EQ(m.target_mac, ethernet_address());
  EXPECT_EQ(m.target_ip, 0x0a000001u);
  std::vector<std::uint8_t> out(arp_message::size);
  m.write(out);
  EXPECT_EQ(out, request_bytes);
  // A reply, and Ethernet's padding after the message.
  m.op = arp_message::operation::reply;
  m.write(out);
  EXPECT_EQ(out[7], 2);
  out.resize(46, 0);
  arp_message reply;
  ASSERT_EQ(arp_message::parse(out, reply), arp_error::none);
  EXPECT_EQ(reply.op, arp_message::operation::reply);
}

TEST(arp, refuses_what_is_not_ethernet_ipv4_arp) {
  arp_message m;
  for (std::size_t n = 0; n < arp_message::size; ++n) {
    EXPECT_EQ(arp_message::parse(std::span<const std::uint8_t>(request_bytes).first(n), m), arp_error::truncated) << n;
  }
  struct {
    std::size_t at;
    std::uint8_t value;
    arp_error expected;
  } changes[] = {
      {1, 0x06, arp_error::not_ethernet_ipv4},  // IEEE 802 hardware
      {2, 0x86, arp_error::not_ethernet_ipv4},  // IPv6 protocol type
      {4, 0x08, arp_error::not_ethernet_ipv4},  // hardware size
      {5, 0x10, arp_error::not_ethernet_ipv4},  // protocol size
      {7, 0x03, arp_error::bad_operation},      // RARP request
      {7, 0x00, arp_error::bad_operation},
      {6, 0x01, arp_error::bad_operation},      // 0x0101
  };
  for (const auto& c : changes) {
    std::vector<std::uint8_t> bad = request_bytes;
    bad[c.at] = c.value;
    EXPECT_EQ(arp_message::parse(bad, m), c.expected) << "byte " << c.at << " = " << int(c.value);
  }
}

TEST(arp, mutated_messages_are_refused_or_read_as_they_are) {
  std::mt19937 random(826);
  int accepted = 0;
  for (int round = 0; round < 5000; ++round) {
    // A valid request with a few bytes changed, cut short now and then.
    std::vector<std::uint8_t> bytes = request_bytes;
    for (int i = 0, n = 1 + random() % 3; i < n; ++i) bytes[random() % bytes.size()] = static_cast<std::uint8_t>(random());
    if (random() % 8 == 0) bytes.resize(random() % bytes.size());
    arp_message m;
    const arp_error e = arp_message::parse(bytes, m);
    if (bytes.size() < arp_message::size) {
      EXPECT_EQ(e, arp_error::truncated);
      continue;
    }
    if (e != arp_error::none) continue;
    ++accepted;
    // What was read is what the bytes say: written back, the same bytes.
    std::vector<std::uint8_t> out(arp_message::size);
    m.write(out);
    EXPECT_EQ(out, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + arp_message::size)) << "round " << round;
  }
  EXPECT_GT(accepted, 1000) << "few mutations reached past the checks: the test is not testing";
}

}  // namespace
}  // namespace reef::tcpip
