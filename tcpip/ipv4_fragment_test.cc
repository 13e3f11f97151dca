// Fragmentation on send: every piece within the MTU with a valid header,
// data in multiples of 8, and the pieces reassemble to the datagram.
#include "tcpip/ipv4_fragment.h"

#include <gtest/gtest.h>

#include <string>

#include "tcpip/ipv4_reassembly.h"

namespace reef::tcpip {
namespace {

std::string bytes_of(packet& p) {
  auto b = p.linearize();
  return std::string(b.get(), b.size());
}

ipv4_header udp_to(std::uint16_t id) {
  ipv4_header h;
  h.id = id;
  h.protocol = 17;
  h.source = 0x0a000001;
  h.destination = 0x0a000002;
  return h;
}

TEST(ipv4_fragment, pieces_fit_the_mtu_and_reassemble_to_the_datagram) {
  for (std::size_t size : {1u, 1480u, 1481u, 2960u, 4000u, 65515u}) {
    for (std::size_t mtu : {68u, 576u, 1500u, 9000u}) {
      std::string data(size, ' ');
      for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 31 + 7);
      auto pieces = fragment_ipv4(udp_to(7), packet::copy_of(data), mtu);
      ASSERT_FALSE(pieces.empty()) << size << " bytes, MTU " << mtu;
      EXPECT_EQ(pieces.size(), size + 20 <= mtu ? 1u : (size + ((mtu - 20) & ~7u) - 1) / ((mtu - 20) & ~7u));
      ipv4_reassembler r({.memory_max = 1 << 20, .fragments_max = 2048});  // 65515 bytes at MTU 68: 1365 pieces
      std::optional<packet> whole;
      for (std::size_t i = 0; i < pieces.size(); ++i) {
        std::string wire = bytes_of(pieces[i]);
        ASSERT_LE(wire.size(), mtu);
        ipv4_header h;
        ASSERT_EQ(ipv4_header::parse(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(wire.data()),
                                                                   wire.size()),
                                     h),
                  ipv4_error::none)
            << "piece " << i;
        EXPECT_EQ(h.id, 7);
        EXPECT_EQ(h.more_fragments, i + 1 < pieces.size());
        if (i + 1 < pieces.size()) EXPECT_EQ(h.data_length() % 8, 0u);
        if (pieces.size() == 1) {
          EXPECT_EQ(wire.substr(20), data);
          continue;
        }
        auto done = r.add(h, packet::copy_of(std::string_view(wire).substr(20)), ipv4_reassembler::time_point());
        EXPECT_EQ(done.has_value(), i + 1 == pieces.size());
        if (done) whole = std::move(done);
      }
      if (pieces.size() > 1) {
        ASSERT_TRUE(whole) << size << " bytes, MTU " << mtu;
        EXPECT_EQ(bytes_of(*whole), data);
      }
    }
  }
}

TEST(ipv4_fragment, dont_fragment_and_a_tiny_mtu_give_nothing) {
  ipv4_header h = udp_to(1);
  h.dont_fragment = true;
  EXPECT_TRUE(fragment_ipv4(h, packet::copy_of(std::string(2000, 'x')), 1500).empty());
  EXPECT_EQ(fragment_ipv4(h, packet::copy_of(std::string(1480, 'x')), 1500).size(), 1u) << "it fits";
  EXPECT_TRUE(fragment_ipv4(udp_to(1), packet::copy_of(std::string(100, 'x')), 27).empty());
  // Data that would end past 65535 bytes.
  EXPECT_TRUE(fragment_ipv4(udp_to(1), packet::copy_of(std::string(65516, 'x')), 1500).empty());
  ipv4_header late = udp_to(1);
  late.fragment_offset = 65000;
  late.more_fragments = true;
  EXPECT_TRUE(fragment_ipv4(late, packet::copy_of(std::string(600, 'x')), 1500).empty());
  EXPECT_EQ(fragment_ipv4(late, packet::copy_of(std::string(515, 'x')), 1500).size(), 1u);
  // An MTU past 65535 is taken as 65535.
  EXPECT_EQ(fragment_ipv4(udp_to(1), packet::copy_of(std::string(65515, 'x')), 1 << 20).size(), 1u);
}

TEST(ipv4_fragment, a_piece_fragmented_again_keeps_its_place) {
  ipv4_header h = udp_to(3);
  h.fragment_offset = 1480;
  h.more_fragments = true;
  auto pieces = fragment_ipv4(h, packet::copy_of(std::string(1480, 'y')), 576);
  ASSERT_EQ(pieces.size(), 3u);
  std::string last = bytes_of(pieces.back());
  ipv4_header parsed;
  ASSERT_EQ(ipv4_header::parse(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(last.data()),
                                                             last.size()),
                               parsed),
            ipv4_error::none);
  EXPECT_EQ(parsed.fragment_offset, 1480 + 2 * 552);
  EXPECT_TRUE(parsed.more_fragments) << "the original piece was not the last";
}

}  // namespace
}  // namespace reef::tcpip
