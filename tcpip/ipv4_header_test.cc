// IPv4 headers byte by byte, and every way a received one is refused.
#include "tcpip/ipv4_header.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tcpip/checksum.h"

namespace reef::tcpip {
namespace {

// 192.168.0.1 -> 192.168.0.199, UDP, 115 bytes, DF, TTL 64.
std::vector<std::uint8_t> sample() {
  std::vector<std::uint8_t> b = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  b.resize(0x73, 0xee);  // the data
  return b;
}

void set_checksum(std::vector<std::uint8_t>& b) {
  const std::size_t header = std::size_t{b[0] & 0xfu} * 4;
  if (b.size() < header || header < 20) return;  // no header to sum: left as it is
  b[10] = b[11] = 0;
  const std::uint16_t sum = internet_checksum(std::span<const std::uint8_t>(b).first(header));
  b[10] = static_cast<std::uint8_t>(sum >> 8);
  b[11] = static_cast<std::uint8_t>(sum);
}

TEST(ipv4, reads_a_header_and_writes_the_same_bytes) {
  const auto bytes = sample();
  ipv4_header h;
  ASSERT_EQ(ipv4_header::parse(bytes, h), ipv4_error::none);
  EXPECT_EQ(h.total_length, 0x73);
  EXPECT_EQ(h.header_length, 20);
  EXPECT_EQ(h.data_length(), 0x73u - 20);
  EXPECT_TRUE(h.dont_fragment);
  EXPECT_FALSE(h.is_fragment());
  EXPECT_EQ(h.ttl, 64);
  EXPECT_EQ(h.protocol, static_cast<std::uint8_t>(ip_protocol::udp));
  EXPECT_EQ(ipv4_to_string(h.source), "192.168.0.1");
  EXPECT_EQ(ipv4_to_string(h.destination), "192.168.0.199");
  std::vector<std::uint8_t> out(ipv4_header::min_size);
  h.write(out);
  EXPECT_EQ(out, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 20));
}

TEST(ipv4, a_written_header_sums_to_zero_whatever_its_fields) {
  // write() sums the fields, not the bytes: both ways must agree.
  std::mt19937 random(791);  // fixed: a failure names its round
  for (int round = 0; round < 2000; ++round) {
    ipv4_header h;
    h.tos = static_cast<std::uint8_t>(random());
    h.total_length = static_cast<std::uint16_t>(random());
    h.id = static_cast<std::uint16_t>(random());
    h.dont_fragment = random() & 1;
    h.more_fragments = random() & 1;
    h.fragment_offset = static_cast<std::uint16_t>((random() & 0x1fff) * 8);
    h.ttl = static_cast<std::uint8_t>(random());
    h.protocol = static_cast<std::uint8_t>(random());
    h.source = round == 0 ? 0xffffffff : static_cast<std::uint32_t>(random());
    h.destination = round == 0 ? 0xffffffff : static_cast<std::uint32_t>(random());
    std::vector<std::uint8_t> out(ipv4_header::min_size);
    h.write(out);
    EXPECT_EQ(internet_checksum(out), 0) << "round " << round;
  }
}

TEST(ipv4, fragments_and_options_are_read) {
  auto b = sample();
  // Options: 4 bytes (NOP, NOP, NOP, end), IHL 6; a fragment at 1480 with
  // more to come.
  b.insert(b.begin() + 20, {0x01, 0x01, 0x01, 0x00});
  b[0] = 0x46;
  b[2] = 0x00;
  b[3] = 0x77;
  b[6] = 0x20 | (1480 / 8) >> 8;
  b[7] = (1480 / 8) & 0xff;
  set_checksum(b);
  ipv4_header h;
  ASSERT_EQ(ipv4_header::parse(b, h), ipv4_error::none);
  EXPECT_EQ(h.header_length, 24);
  EXPECT_EQ(h.data_length(), 0x77u - 24);
  EXPECT_TRUE(h.more_fragments);
  EXPECT_FALSE(h.dont_fragment);
  EXPECT_EQ(h.fragment_offset, 1480);
  EXPECT_TRUE(h.is_fragment());
  // Written back (without options), it reads the same.
  ipv4_header written = h;
  written.total_length = static_cast<std::uint16_t>(20 + h.data_length());
  std::vector<std::uint8_t> out(written.total_length);
  written.write(out);
  ipv4_header again;
  ASSERT_EQ(ipv4_header::parse(out, again), ipv4_error::none);
  EXPECT_EQ(again.fragment_offset, 1480);
  EXPECT_TRUE(again.more_fragments);
}

TEST(ipv4, refuses_each_malformed_header_with_its_reason) {
  struct change {
    const char* what;
    void (*apply)(std::vector<std::uint8_t>&);
    ipv4_error expected;
  };
  const change changes[] = {
      {"version 6", [](auto& b) { b[0] = 0x65; }, ipv4_error::bad_version},
      {"IHL 4", [](auto& b) { b[0] = 0x44; }, ipv4_error::bad_header_length},
      {"IHL 15 in a 20-byte frame", [](auto& b) { b[0] = 0x4f; b.resize(20); }, ipv4_error::truncated},
      {"total length below the header", [](auto& b) { b[2] = 0; b[3] = 19; }, ipv4_error::bad_total_length},
      {"total length past the frame", [](auto& b) { b[3] = 0x74; }, ipv4_error::truncated},
      {"a flipped address bit", [](auto& b) { b[15] ^= 1; }, ipv4_error::bad_checksum},
      {"a fragment past 65535", [](auto& b) { b[6] = 0x1f; b[7] = 0xff; }, ipv4_error::fragment_too_large},
  };
  for (const auto& c : changes) {
    auto b = sample();
    c.apply(b);
    if (c.expected != ipv4_error::bad_checksum && b.size() >= 20) set_checksum(b);
    ipv4_header h;
    EXPECT_EQ(ipv4_header::parse(b, h), c.expected) << c.what << ": got " << to_string(ipv4_header::parse(b, h));
  }
  auto b = sample();
  ipv4_header h;
  for (std::size_t n = 0; n < 20; ++n) {
    EXPECT_EQ(ipv4_header::parse(std::span<const std::uint8_t>(b).first(n), h), ipv4_error::truncated) << n;
  }
  // A checksum the device verified is not checked again.
  b[15] ^= 1;
  EXPECT_EQ(ipv4_header::parse(b, h, true), ipv4_error::none);
  // Ethernet padding after the datagram is fine.
  b = sample();
  b.resize(b.size() + 10, 0);
  EXPECT_EQ(ipv4_header::parse(b, h), ipv4_error::none);
}

TEST(ipv4, a_quoted_header_is_read_without_its_datagram) {
  auto b = sample();
  b.resize(28);  // what an ICMP error quotes: the header and 8 bytes
  b[15] ^= 1;    // a router changed it on the way
  ipv4_header h;
  EXPECT_EQ(ipv4_header::parse(b, h), ipv4_error::truncated);
  ASSERT_EQ(ipv4_header::parse_quoted(b, h), ipv4_error::none);
  EXPECT_EQ(h.total_length, 0x73);
  EXPECT_EQ(h.protocol, 17);
  EXPECT_EQ(ipv4_header::parse_quoted(std::span<const std::uint8_t>(b).first(19), h), ipv4_error::truncated);
  b[0] = 0x46;  // says 24 bytes of header: 28 quoted is enough
  EXPECT_EQ(ipv4_header::parse_quoted(b, h), ipv4_error::none);
  b[0] = 0x4f;  // 60: not quoted whole
  EXPECT_EQ(ipv4_header::parse_quoted(b, h), ipv4_error::truncated);
  b[0] = 0x65;
  EXPECT_EQ(ipv4_header::parse_quoted(b, h), ipv4_error::bad_version);
}

TEST(ipv4, a_fragment_may_end_at_65535_and_not_past_it) {
  auto b = sample();  // 0x73 - 20 = 95 bytes of data
  const std::size_t data = 0x73 - 20;
  ipv4_header h;
  for (const auto& [offset, ok] : {std::pair{(65535 - data) / 8 * 8, true}, std::pair{(65535 - data) / 8 * 8 + 8, false}}) {
    b[6] = static_cast<std::uint8_t>((offset / 8) >> 8);
    b[7] = static_cast<std::uint8_t>(offset / 8);
    set_checksum(b);
    EXPECT_EQ(ipv4_header::parse(b, h), ok ? ipv4_error::none : ipv4_error::fragment_too_large) << offset;
  }
  // Exactly 65535: 65440 + 95.
  b[6] = static_cast<std::uint8_t>((65440 / 8) >> 8);
  b[7] = static_cast<std::uint8_t>(65440 / 8);
  set_checksum(b);
  ASSERT_EQ(ipv4_header::parse(b, h), ipv4_error::none);
  EXPECT_EQ(h.fragment_offset + h.data_length(), 65535u);
}

TEST(ipv4, garbage_is_refused_or_read_within_its_bounds) {
  std::mt19937 random(791);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::uint8_t> b(random() % 80);
    for (auto& x : b) x = static_cast<std::uint8_t>(random());
    if (b.size() >= 28 && round % 2 == 0) {
      b[0] = static_cast<std::uint8_t>(0x45 + random() % 3);  // often well-formed enough to reach later checks
      b[2] = 0;
      b[3] = static_cast<std::uint8_t>(b.size());
      set_checksum(b);
    }
    ipv4_header h;
    if (ipv4_header::parse(b, h) != ipv4_error::none) continue;
    ++accepted;
    EXPECT_LE(h.total_length, b.size());
    EXPECT_GE(h.total_length, h.header_length);
    EXPECT_LE(std::size_t{h.fragment_offset} + h.data_length(), ipv4_header::max_datagram);
  }
  EXPECT_GT(accepted, 0) << "no garbage reached past the checks";
}

}  // namespace
}  // namespace reef::tcpip
