// The Internet checksum: RFC 1071's example, an IPv4 header, and any
// split of the bytes into pieces (odd ones included) against the
// definition.
#include "tcpip/checksum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace reef::tcpip {
namespace {

// The definition, word by word.
std::uint16_t reference(const std::vector<std::uint8_t>& bytes) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    const std::uint32_t high = bytes[i];
    const std::uint32_t low = i + 1 < bytes.size() ? bytes[i + 1] : 0;
    sum += (high << 8) | low;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum);
}

TEST(checksum, rfc_1071s_example) {
  // RFC 1071 1.3: these words sum to 0xddf2.
  const std::vector<std::uint8_t> bytes = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(internet_checksum(bytes), 0xffff - 0xddf2);
}

TEST(checksum, an_ipv4_header_sums_to_zero_with_its_checksum) {
  std::vector<std::uint8_t> header = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                                      0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  const std::uint16_t sum = internet_checksum(header);
  EXPECT_EQ(sum, 0xb861);
  header[10] = static_cast<std::uint8_t>(sum >> 8);
  header[11] = static_cast<std::uint8_t>(sum);
  EXPECT_EQ(internet_checksum(header), 0) << "a receiver's check";
  header[15] ^= 0x01;
  EXPECT_NE(internet_checksum(header), 0) << "a flipped bit goes unseen";
}

TEST(checksum, any_split_into_pieces_gives_the_sum_of_the_whole) {
  std::mt19937 random(1071);  // fixed: a failure names its round
  for (int round = 0; round < 500; ++round) {
    std::vector<std::uint8_t> bytes(random() % 300);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(random());
    const std::uint16_t expected = reference(bytes);
    EXPECT_EQ(internet_checksum(bytes), expected) << "round " << round << ", " << bytes.size() << " bytes";
    // The same bytes in pieces of random lengths, as calls and as a packet.
    checksummer calls;
    packet p;
    for (std::size_t at = 0; at < bytes.size();) {
      const std::size_t n = std::min<std::size_t>(bytes.size() - at, random() % 20);
      calls.add(std::span<const std::uint8_t>(bytes).subspan(at, n));
      p.append(temporary_buffer<char>::copy_of(std::string_view(reinterpret_cast<const char*>(bytes.data()) + at, n)));
      at += n;
    }
    EXPECT_EQ(calls.get(), expected) << "round " << round << " in pieces";
    checksummer whole_packet;
    whole_packet.add(p);
    EXPECT_EQ(whole_packet.get(), expected) << "round " << round << " as a packet of " << p.nr_frags() << " fragments";
  }
}

TEST(checksum, long_runs_of_ones_carry_as_the_definition_does) {
  // All-ones words make every partial sum carry: the wide sums' folding
  // is checked at every length up to a jumbo frame and at 64 KiB.
  for (std::size_t n : {2, 3, 7, 8, 9, 31, 32, 33, 63, 64, 65, 1500, 9000, 65535}) {
    std::vector<std::uint8_t> ones(n, 0xff);
    EXPECT_EQ(internet_checksum(ones), reference(ones)) << n << " bytes of 0xff";
    std::vector<std::uint8_t> mixed(n, 0xff);
    mixed[n / 2] = 0x00;
    mixed[n - 1] = 0x01;
    EXPECT_EQ(internet_checksum(mixed), reference(mixed)) << n << " bytes, mostly 0xff";
  }
  EXPECT_EQ(internet_checksum(std::vector<std::uint8_t>(100, 0)), 0xffff) << "zeros sum to zero, complemented";
}

TEST(checksum, a_pseudo_header_adds_as_its_bytes_would) {
  // UDP's pseudo header (source, destination, protocol, length) then data.
  const std::uint32_t source = 0xc0a80001;
  const std::uint32_t destination = 0xc0a800c7;
  const std::vector<std::uint8_t> data = {0x30, 0x39, 0x00, 0x35, 0x00, 0x0b, 0x00, 0x00, 'a', 'b', 'c'};
  checksummer c;
  c.add_u32(source);
  c.add_u32(destination);
  c.add_u16(17);
  c.add_u16(static_cast<std::uint16_t>(data.size()));
  c.add(data);
  std::vector<std::uint8_t> all = {0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7, 0x00, 17, 0x00,
                                   static_cast<std::uint8_t>(data.size())};
  all.insert(all.end(), data.begin(), data.end());
  EXPECT_EQ(c.get(), reference(all));
  EXPECT_EQ(checksummer().get(), 0xffff) << "nothing added";
  // Transmit offload: the pseudo header's partial sum in the field, then
  // the device's sum over the datagram, complemented, is the checksum.
  checksummer pseudo;
  pseudo.add_u32(source);
  pseudo.add_u32(destination);
  pseudo.add_u16(17);
  pseudo.add_u16(static_cast<std::uint16_t>(data.size()));
  std::vector<std::uint8_t> with_partial = data;
  with_partial[6] = static_cast<std::uint8_t>(pseudo.partial() >> 8);
  with_partial[7] = static_cast<std::uint8_t>(pseudo.partial());
  EXPECT_EQ(internet_checksum(with_partial), reference(all)) << "what the device computes";
}

}  // namespace
}  // namespace reef::tcpip
