// Ethernet addresses and headers, byte by byte, and frames that are not
// Ethernet II.
#include "tcpip/ethernet.h"

#include <gtest/gtest.h>

#include <vector>

namespace reef::tcpip {
namespace {

TEST(ethernet_address, parses_and_prints) {
  auto a = ethernet_address::parse("02:00:5E:10:aB:ff");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->bytes, (std::array<std::uint8_t, 6>{0x02, 0x00, 0x5e, 0x10, 0xab, 0xff}));
  EXPECT_EQ(a->to_string(), "02:00:5e:10:ab:ff");
  EXPECT_FALSE(a->is_multicast());
  EXPECT_TRUE(ethernet_address::broadcast().is_broadcast());
  EXPECT_TRUE(ethernet_address::broadcast().is_multicast());
  EXPECT_TRUE(ethernet_address::parse("01:00:5e:00:00:01")->is_multicast());
}

TEST(ethernet_address, refuses_garbage) {
  for (const char* bad : {"", "02:00:5e:10:ab", "02:00:5e:10:ab:ff:", "02-00-5e-10-ab-ff", "02:00:5e:10:ab:fg",
                          "2:00:5e:10:ab:ff0", "02:00:5e:10:ab:f", "  :00:5e:10:ab:ff", "02:00:5e:10:ab:ff "}) {
    EXPECT_FALSE(ethernet_address::parse(bad)) << "'" << bad << "'";
  }
}

TEST(ethernet_header, reads_and_writes_wire_order) {
  const std::vector<std::uint8_t> frame = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // destination
                                           0x02, 0x00, 0x00, 0x00, 0x00, 0x01,  // source
                                           0x08, 0x06,                          // ARP
                                           0xaa};                               // payload
  auto h = ethernet_header::parse(frame);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->destination.is_broadcast());
  EXPECT_EQ(h->source.to_string(), "02:00:00:00:00:01");
  EXPECT_EQ(h->type, static_cast<std::uint16_t>(ether_type::arp));
  std::vector<std::uint8_t> out(ethernet_header::size);
  h->write(out);
  EXPECT_EQ(out, std::vector<std::uint8_t>(frame.begin(), frame.begin() + ethernet_header::size));
}

TEST(ethernet_header, refuses_short_frames_and_802_3_lengths) {
  std::vector<std::uint8_t> frame(ethernet_header::size, 0);
  frame[12] = 0x05;  // 0x05dc: a length (1500), not a type
  frame[13] = 0xdc;
  EXPECT_FALSE(ethernet_header::parse(frame));
  frame[12] = 0x08;
  frame[13] = 0x00;
  EXPECT_TRUE(ethernet_header::parse(frame));
  for (std::size_t n = 0; n < ethernet_header::size; ++n) {
    EXPECT_FALSE(ethernet_header::parse(std::span<const std::uint8_t>(frame).first(n))) << n << " bytes";
  }
  ethernet_header h;
  EXPECT_EQ(ethernet_header::parse(std::span<const std::uint8_t>(frame).first(13), h), ethernet_error::truncated);
  frame[12] = 0x05;
  EXPECT_EQ(ethernet_header::parse(frame, h), ethernet_error::not_type);
  frame[12] = 0x06;  // 0x0600: the smallest type
  EXPECT_EQ(ethernet_header::parse(frame, h), ethernet_error::none);
  EXPECT_EQ(h.type, 0x0600);
}

}  // namespace
}  // namespace reef::tcpip
