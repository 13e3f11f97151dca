// UDP and ICMP headers: byte by byte against sums worked by hand, and
// every refusal.
#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

#include "tcpip/checksum.h"
#include "tcpip/icmp_header.h"
#include "tcpip/udp_header.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t a1 = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t a2 = 0x0a000002;

packet packet_of(const std::vector<std::uint8_t>& b) {
  return packet::copy_of(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

// 10.0.0.1:1234 -> 10.0.0.2:53, "hello". By hand: the pseudo header and
// the words sum to 0x5d07, so the checksum is 0xa2f8.
std::vector<std::uint8_t> hello_datagram() {
  return {0x04, 0xd2, 0x00, 0x35, 0x00, 0x0d, 0xa2, 0xf8, 'h', 'e', 'l', 'l', 'o'};
}

TEST(udp_header, checksum_and_header_byte_by_byte) {
  auto d = hello_datagram();
  d[6] = d[7] = 0;
  EXPECT_EQ(udp_checksum(a1, a2, packet_of(d)), 0xa2f8);
  udp_header h{1234, 53, 13, 0xa2f8};
  std::vector<std::uint8_t> out(udp_header::size);
  h.write(out);
  const auto hello = hello_datagram();
  EXPECT_EQ(out, std::vector<std::uint8_t>(hello.begin(), hello.begin() + 8));
  udp_header read;
  ASSERT_EQ(udp_header::parse(hello_datagram(), a1, a2, read), udp_error::none);
  EXPECT_EQ(read.source_port, 1234);
  EXPECT_EQ(read.destination_port, 53);
  EXPECT_EQ(read.length, 13);
}

// A datagram in pieces (as reassembly gives it), split at every point.
packet in_pieces(const std::vector<std::uint8_t>& b, std::size_t cut1, std::size_t cut2) {
  auto part = [&](std::size_t from, std::size_t to) {
    return temporary_buffer<char>::copy_of(std::string_view(reinterpret_cast<const char*>(b.data()) + from, to - from));
  };
  packet p(part(0, cut1));
  p.append(part(cut1, cut2));
  p.append(part(cut2, b.size()));
  return p;
}

TEST(udp_header, a_datagram_in_pieces_reads_as_the_whole) {
  auto d = hello_datagram();
  d.push_back(0x77);  // padding past the UDP length
  for (std::size_t cut1 = 0; cut1 <= d.size(); ++cut1) {
    for (std::size_t cut2 = cut1; cut2 <= d.size(); ++cut2) {
      udp_header h;
      ASSERT_EQ(udp_header::parse(in_pieces(d, cut1, cut2), a1, a2, h), udp_error::none) << cut1 << "/" << cut2;
      EXPECT_EQ(h.source_port, 1234);
      EXPECT_EQ(h.length, 13);
    }
  }
  d[10] ^= 1;
  udp_header h;
  EXPECT_EQ(udp_header::parse(in_pieces(d, 3, 9), a1, a2, h), udp_error::bad_checksum);
  EXPECT_EQ(udp_header::parse(in_pieces(d, 3, 5), a1, a2, h, true), udp_error::none);
  EXPECT_EQ(udp_header::parse(packet::copy_of("1234567"), a1, a2, h), udp_error::truncated);
  std::vector<std::uint8_t> m = {0x08, 0x00, 0x06, 0xf4, 0x12, 0x34, 0x00, 0x07, 'p', 'i', 'n', 'g'};
  icmp_header i;
  for (std::size_t cut = 0; cut <= m.size(); ++cut) {
    ASSERT_EQ(icmp_header::parse(in_pieces(m, cut, cut), i), icmp_error::none) << cut;
    EXPECT_EQ(i.sequence, 7);
  }
  m[9] ^= 1;
  EXPECT_EQ(icmp_header::parse(in_pieces(m, 2, 6), i), icmp_error::bad_checksum);
}

TEST(udp_header, refuses_bad_lengths_and_checksums_and_takes_none) {
  udp_header h;
  auto d = hello_datagram();
  for (std::size_t n = 0; n < 8; ++n) {
    EXPECT_EQ(udp_header::parse(std::span<const std::uint8_t>(d).first(n), a1, a2, h), udp_error::truncated) << n;
  }
  EXPECT_EQ(udp_header::parse(std::span<const std::uint8_t>(d).first(12), a1, a2, h), udp_error::truncated);
  d[5] = 7;
  EXPECT_EQ(udp_header::parse(d, a1, a2, h), udp_error::bad_length);
  d = hello_datagram();
  d[12] = 'O';
  EXPECT_EQ(udp_header::parse(d, a1, a2, h), udp_error::bad_checksum);
  EXPECT_EQ(udp_header::parse(d, a1, a2 + 1, h), udp_error::bad_checksum) << "another destination";
  EXPECT_EQ(udp_header::parse(d, a1, a2, h, true), udp_error::none) << "verified by the device";
  d[6] = d[7] = 0;  // none computed (RFC 768)
  EXPECT_EQ(udp_header::parse(d, a1, a2, h), udp_error::none);
  // The IP payload may run past the UDP length (padding): only the length counts.
  d = hello_datagram();
  d.push_back(0x99);
  EXPECT_EQ(udp_header::parse(d, a1, a2, h), udp_error::none);
}

TEST(udp_header, a_sum_of_zero_is_sent_as_all_ones) {
  // Find data whose checksum comes to 0, then check it is sent as 0xffff
  // and that a receiver takes it.
  std::vector<std::uint8_t> d = {0x00, 0x01, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00};
  for (unsigned w = 0; w <= 0xffff; ++w) {
    d[8] = static_cast<std::uint8_t>(w >> 8);
    d[9] = static_cast<std::uint8_t>(w);
    checksummer c;
    c.add_u32(a1);
    c.add_u32(a2);
    c.add_u16(17);
    c.add_u16(10);
    c.add(d);
    if (c.get() == 0) break;
  }
  EXPECT_EQ(udp_checksum(a1, a2, packet_of(d)), 0xffff);
  d[6] = d[7] = 0xff;
  udp_header h;
  EXPECT_EQ(udp_header::parse(d, a1, a2, h), udp_error::none);
}

// Echo request, id 0x1234, sequence 7, "ping": the words sum to 0xf90b,
// so the checksum is 0x06f4.
TEST(icmp_header, echo_byte_by_byte_and_refusals) {
  std::vector<std::uint8_t> m = {0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x07, 'p', 'i', 'n', 'g'};
  EXPECT_EQ(icmp_checksum(packet_of(m)), 0x06f4);
  icmp_header h{static_cast<std::uint8_t>(icmp_type::echo_request), 0, 0x06f4, 0x1234, 7};
  h.write(m);
  EXPECT_EQ(m[2], 0x06);
  EXPECT_EQ(m[3], 0xf4);
  icmp_header read;
  ASSERT_EQ(icmp_header::parse(m, read), icmp_error::none);
  EXPECT_EQ(read.type, static_cast<std::uint8_t>(icmp_type::echo_request));
  EXPECT_EQ(read.id, 0x1234);
  EXPECT_EQ(read.sequence, 7);
  m[11] = 'G';
  EXPECT_EQ(icmp_header::parse(m, read), icmp_error::bad_checksum);
  EXPECT_EQ(icmp_header::parse(m, read, true), icmp_error::none);
  for (std::size_t n = 0; n < icmp_header::size; ++n) {
    EXPECT_EQ(icmp_header::parse(std::span<const std::uint8_t>(m).first(n), read), icmp_error::truncated) << n;
  }
}

TEST(udp_and_icmp_headers, mutated_messages_are_refused_or_read_within_their_bounds) {
  std::mt19937 random(768);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    // The hello datagram with a byte changed (often a length or the
    // checksum), or its checksum cleared, or cut short.
    std::vector<std::uint8_t> b = hello_datagram();
    b[random() % b.size()] = static_cast<std::uint8_t>(random());
    if (random() % 4 == 0) b[6] = b[7] = 0;
    if (random() % 8 == 0) b.resize(random() % b.size());
    udp_header u;
    if (udp_header::parse(b, a1, a2, u) == udp_error::none) {
      ++accepted;
      EXPECT_LE(u.length, b.size());
      EXPECT_GE(u.length, udp_header::size);
      if (u.checksum != 0) {
        // Accepted with a checksum: it holds.
        std::vector<std::uint8_t> datagram(b.begin(), b.begin() + u.length);
        datagram[6] = datagram[7] = 0;
        EXPECT_EQ(udp_checksum(a1, a2, packet_of(datagram)), u.checksum) << "round " << round;
      }
    }
    icmp_header i;
    if (icmp_header::parse(b, i) == icmp_error::none) EXPECT_GE(b.size(), icmp_header::size);
  }
  EXPECT_GT(accepted, 1000) << "few mutations reached past the checks: the test is not testing";
}

}  // namespace
}  // namespace reef::tcpip
