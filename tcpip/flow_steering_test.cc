// Flow steering: the flow table follows the device's redirection and the
// queue weight, frames go where their flow's datagrams go (ARP stays,
// ephemeral UDP ports by owner, fragments by addresses, ICMP errors by
// the datagram they quote), and bad configurations are refused.
#include "tcpip/flow_steering.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <vector>

#include "tcpip/ipv4_header.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t a_ip = 0x0a000001;
constexpr std::uint32_t b_ip = 0x0a000002;

device_info device_with(unsigned queues) {
  device_info info;
  info.queues = queues;
  info.redirection = redirection_table(queues, 128).entries();
  return info;
}

// An Ethernet frame with an IPv4 header and `data` after it.
std::vector<std::uint8_t> frame_of(const ipv4_header& h, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> f(14 + 20 + data.size(), 0);
  wire::put16(f, 12, 0x0800);
  ipv4_header copy = h;
  copy.total_length = static_cast<std::uint16_t>(20 + data.size());
  copy.write(std::span<std::uint8_t>(f).subspan(14));
  std::copy(data.begin(), data.end(), f.begin() + 34);
  return f;
}

std::vector<std::uint8_t> udp_frame(std::uint32_t src, std::uint32_t dst, std::uint16_t sport, std::uint16_t dport) {
  ipv4_header h;
  h.protocol = 17;
  h.source = src;
  h.destination = dst;
  std::vector<std::uint8_t> udp(8, 0);
  wire::put16(udp, 0, sport);
  wire::put16(udp, 2, dport);
  return frame_of(h, udp);
}

TEST(flow_steering, the_table_keeps_each_queue_s_flows_with_its_owner_and_followers) {
  const device_info info = device_with(2);
  flow_steering s(info, {.shards = 4});
  std::map<unsigned, int> count;
  for (std::size_t i = 0; i < s.table().size(); ++i) {
    const unsigned queue = info.redirection[i % info.redirection.size()];
    const unsigned shard = s.table()[i];
    EXPECT_EQ(shard % 2, queue) << "entry " << i << ": queue " << queue << "'s flows go to shard " << shard;
    ++count[shard];
  }
  ASSERT_EQ(count.size(), 4u);
  for (auto& [shard, n] : count) EXPECT_EQ(n, static_cast<int>(s.table().size() / 4)) << "shard " << shard;
  EXPECT_TRUE(s.owns_queue(1));
  EXPECT_FALSE(s.owns_queue(2));
  EXPECT_EQ(s.transmitter_of(3), 1u);
}

TEST(flow_steering, the_queue_weight_sets_the_owner_s_share) {
  flow_steering half(device_with(1), {.shards = 2, .hw_queue_weight = 0.5});
  std::size_t owner = 0;
  for (auto shard : half.table()) owner += shard == 0;
  EXPECT_NEAR(static_cast<double>(owner), half.table().size() / 3.0, 1.0) << "weights 0.5 and 1";
  flow_steering none(device_with(1), {.shards = 3, .hw_queue_weight = 0});
  for (auto shard : none.table()) EXPECT_NE(shard, 0u);
  flow_steering alone(device_with(1), {.shards = 1, .hw_queue_weight = 0});
  for (auto shard : alone.table()) EXPECT_EQ(shard, 0u) << "a queue owner without followers keeps its flows";
}

TEST(flow_steering, bad_configurations_are_refused) {
  EXPECT_THROW(flow_steering(device_with(4), {.shards = 2}), std::invalid_argument);
  EXPECT_THROW(flow_steering(device_with(1), {.shards = 0}), std::invalid_argument);
  EXPECT_THROW(flow_steering(device_with(1), {.shards = 2, .hw_queue_weight = 1.5}), std::invalid_argument);
  EXPECT_THROW(flow_steering(device_with(1), {.shards = 2, .hw_queue_weight = -0.1}), std::invalid_argument);
  EXPECT_THROW(flow_steering(device_with(1), {.shards = 2, .ephemeral_first = 2000, .ephemeral_last = 1000}),
               std::invalid_argument);
}

TEST(flow_steering, frames_go_where_their_flow_s_datagrams_go) {
  flow_steering s(device_with(2), {.shards = 4});
  toeplitz_hash hash;
  // UDP to a well-known port: by the hash of its 4-tuple, the device's
  // if it gave one.
  for (std::uint16_t sport = 1000; sport < 1100; ++sport) {
    const auto f = udp_frame(a_ip, b_ip, sport, 53);
    const unsigned expected = s.shard_of_hash(hash.ipv4_ports(a_ip, b_ip, sport, 53));
    EXPECT_EQ(s.shard_of_frame(f, std::nullopt, 0), expected);
    EXPECT_EQ(s.shard_of_datagram(17, a_ip, b_ip, sport, 53), expected);
    EXPECT_EQ(s.shard_of_frame(f, 7u, 0), s.shard_of_hash(7)) << "the device's hash is used";
  }
  // UDP to an ephemeral port: the port's owner, whatever the hash.
  for (std::uint16_t port = 32768; port < 32868; ++port) {
    const unsigned owner = (port - 32768) % 4;
    EXPECT_TRUE(s.ephemeral_port_of(owner, port));
    EXPECT_FALSE(s.ephemeral_port_of((owner + 1) % 4, port));
    EXPECT_EQ(s.shard_of_frame(udp_frame(a_ip, b_ip, 53, port), 7u, 3), owner);
  }
  EXPECT_FALSE(s.ephemeral_port_of(0, 80)) << "not in the range";
  // DHCP's answers: shard 0, where the client runs.
  EXPECT_EQ(s.shard_of_frame(udp_frame(a_ip, 0xffffffff, 67, 68), 7u, 3), 0u);
  EXPECT_EQ(s.shard_of_datagram(17, a_ip, b_ip, 67, 68), 0u);
  // A fragment: by its addresses (its later pieces have no ports).
  ipv4_header piece;
  piece.protocol = 17;
  piece.source = a_ip;
  piece.destination = b_ip;
  piece.more_fragments = true;
  EXPECT_EQ(s.shard_of_frame(frame_of(piece, std::vector<std::uint8_t>(16, 0)), 7u, 0),
            s.shard_of_hash(hash.ipv4(a_ip, b_ip)));
  piece.more_fragments = false;
  piece.fragment_offset = 8;
  EXPECT_EQ(s.shard_of_frame(frame_of(piece, std::vector<std::uint8_t>(16, 0)), std::nullopt, 0),
            s.shard_of_hash(hash.ipv4(a_ip, b_ip)));
  // Port unreachable from B about our datagram A:1234 -> B:53 goes where
  // B's replies to A:1234 go.
  ipv4_header icmp;
  icmp.protocol = 1;
  icmp.source = b_ip;
  icmp.destination = a_ip;
  std::vector<std::uint8_t> message(8 + 20 + 8, 0);
  message[0] = 3;
  message[1] = 3;
  ipv4_header quoted;
  quoted.protocol = 17;
  quoted.source = a_ip;
  quoted.destination = b_ip;
  quoted.total_length = 28;
  quoted.write(std::span<std::uint8_t>(message).subspan(8));
  wire::put16(message, 28, 1234);
  wire::put16(message, 30, 53);
  EXPECT_EQ(s.shard_of_frame(frame_of(icmp, message), 7u, 0), s.shard_of_datagram(17, b_ip, a_ip, 53, 1234));
  // ARP, other types and what is too short to read stay where they are.
  std::vector<std::uint8_t> arp(42, 0);
  wire::put16(arp, 12, 0x0806);
  EXPECT_EQ(s.shard_of_frame(arp, 7u, 2), 2u);
  EXPECT_EQ(s.shard_of_frame(std::vector<std::uint8_t>(10, 0), std::nullopt, 1), 1u);
  auto cut = udp_frame(a_ip, b_ip, 1, 2);
  cut.resize(14 + 12);
  EXPECT_EQ(s.shard_of_frame(cut, std::nullopt, 3), 3u);
  cut = udp_frame(a_ip, b_ip, 1, 2);
  cut[14] = 0x65;  // version 6
  EXPECT_EQ(s.shard_of_frame(cut, std::nullopt, 3), 3u);
}

TEST(flow_steering, one_shard_takes_everything) {
  flow_steering s(device_with(1), {.shards = 1});
  EXPECT_EQ(s.shard_of_frame(udp_frame(a_ip, b_ip, 53, 40000), 7u, 0), 0u);
  EXPECT_TRUE(s.ephemeral_port_of(0, 40000));
}

}  // namespace
}  // namespace reef::tcpip
