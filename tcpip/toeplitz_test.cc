// The software RSS hash against the verification data of Microsoft's RSS
// specification, the table form against the definition, and the
// redirection table.
#include "tcpip/toeplitz.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace reef::tcpip {
namespace {

std::uint32_t ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET, text, &a), 1) << text;
  return ntohl(a.s_addr);
}

// "Verifying the RSS Hash Calculation" (Microsoft), with its key (Reef's
// default): the IPv4 pairs and 4-tuples and their hashes.
struct vector_case {
  const char* destination;
  std::uint16_t destination_port;
  const char* source;
  std::uint16_t source_port;
  std::uint32_t ipv4_only;
  std::uint32_t with_ports;
};
constexpr vector_case verification[] = {
    {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
};

std::vector<std::uint8_t> bytes_of(std::uint32_t source, std::uint32_t destination) {
  std::vector<std::uint8_t> out;
  for (std::uint32_t v : {source, destination}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  return out;
}

TEST(toeplitz, matches_the_rss_specification_verification_data) {
  toeplitz_hash h;
  for (const auto& v : verification) {
    const std::uint32_t s = ip(v.source);
    const std::uint32_t d = ip(v.destination);
    EXPECT_EQ(h.ipv4(s, d), v.ipv4_only) << v.source << " -> " << v.destination;
    EXPECT_EQ(h.ipv4_ports(s, d, v.source_port, v.destination_port), v.with_ports)
        << v.source << ":" << v.source_port << " -> " << v.destination << ":" << v.destination_port;
    std::vector<std::uint8_t> input = bytes_of(s, d);
    EXPECT_EQ(toeplitz_hash_bitwise(default_toeplitz_key, input), v.ipv4_only) << v.source;
    EXPECT_EQ(h(input), v.ipv4_only) << v.source;
    for (std::uint16_t port : {v.source_port, v.destination_port}) {
      input.push_back(static_cast<std::uint8_t>(port >> 8));
      input.push_back(static_cast<std::uint8_t>(port));
    }
    EXPECT_EQ(toeplitz_hash_bitwise(default_toeplitz_key, input), v.with_ports) << v.source;
    EXPECT_EQ(h(input), v.with_ports) << v.source;
  }
}

TEST(toeplitz, tables_agree_with_the_definition_for_any_key_and_input) {
  std::mt19937 random(20261130);  // a failure names its case: the seed is fixed
  for (int round = 0; round < 200; ++round) {
    toeplitz_key key;
    for (auto& b : key) b = static_cast<std::uint8_t>(random());
    toeplitz_hash h(key);
    std::vector<std::uint8_t> input(random() % (toeplitz_hash::input_max + 1));
    for (auto& b : input) b = static_cast<std::uint8_t>(random());
    EXPECT_EQ(h(input), toeplitz_hash_bitwise(key, input)) << "round " << round << ", " << input.size() << " bytes";
  }
  // Longer inputs (IPv6 with ports: 36 bytes) by the definition.
  std::vector<std::uint8_t> zeros(36, 0);
  EXPECT_EQ(toeplitz_hash_bitwise(default_toeplitz_key, zeros), 0u);
  EXPECT_EQ(toeplitz_hash(default_toeplitz_key)({}), 0u);
}

TEST(redirection_table, gives_each_shard_an_even_share_in_turn) {
  redirection_table t(3, 8);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_EQ(t.shards(), 3u);
  EXPECT_EQ(t.entries(), (std::vector<std::uint16_t>{0, 1, 2, 0, 1, 2, 0, 1}));
  EXPECT_EQ(t.shard_of(0), 0u);
  EXPECT_EQ(t.shard_of(5), 2u);
  EXPECT_EQ(t.shard_of(8 + 5), 2u);  // the low bits index the table
  EXPECT_EQ(t.shard_of(0xffffffffu), 1u);
  // Flows spread over the shards (the default table and key).
  toeplitz_hash h;
  redirection_table shards(4);
  std::vector<int> per_shard(4);
  for (std::uint16_t port = 1024; port < 1024 + 4000; ++port) {
    ++per_shard[shards.shard_of(h.ipv4_ports(ip("10.0.0.1"), ip("10.0.0.2"), port, 80))];
  }
  for (unsigned s = 0; s < 4; ++s) {
    EXPECT_GT(per_shard[s], 700) << "shard " << s << " got " << per_shard[s] << " of 4000 flows";
  }
}

TEST(port_for_shard, the_replies_of_the_flow_come_back_to_the_shard) {
  toeplitz_hash h;
  redirection_table table(4);
  const std::uint32_t local = ip("10.0.0.2");
  const std::uint32_t remote = ip("10.0.0.1");
  for (unsigned shard = 0; shard < 4; ++shard) {
    std::set<std::uint16_t> taken;
    for (int n = 0; n < 50; ++n) {
      auto port = port_for_shard(h, table, shard, local, remote, 53, 32768, 60999, 40000,
                                 [&](std::uint16_t p) { return !taken.contains(p); });
      ASSERT_TRUE(port) << "shard " << shard;
      EXPECT_TRUE(*port >= 32768 && *port <= 60999);
      EXPECT_FALSE(taken.contains(*port));
      taken.insert(*port);
      // A reply: remote -> local, to the port.
      EXPECT_EQ(table.shard_of(h.ipv4_ports(remote, local, 53, *port)), shard) << "port " << *port;
    }
  }
  // A range with no port for the shard, or none free, or upside down.
  auto never = [](std::uint16_t) { return false; };
  EXPECT_FALSE(port_for_shard(h, table, 1, local, remote, 53, 1000, 2000, 1500, never));
  EXPECT_FALSE(port_for_shard(h, table, 1, local, remote, 53, 2000, 1000, 1500, [](std::uint16_t) { return true; }));
  // Wrapping: a start past the range begins at its first port, and the
  // search wraps from `last` to `first`.
  auto any = [](std::uint16_t) { return true; };
  redirection_table one(1, 1);
  EXPECT_EQ(port_for_shard(h, one, 0, local, remote, 53, 100, 200, 5, any), 100);
  EXPECT_EQ(port_for_shard(h, one, 0, local, remote, 53, 100, 200, 200, any), 200);
  EXPECT_EQ(port_for_shard(h, one, 0, local, remote, 53, 100, 200, 200, [](std::uint16_t p) { return p != 200; }),
            100);
  EXPECT_EQ(port_for_shard(h, one, 0, local, remote, 53, 65535, 65535, 0, any), 65535);
}

TEST(redirection_table, refuses_sizes_that_cannot_work) {
  EXPECT_THROW(redirection_table(0), std::invalid_argument);
  EXPECT_THROW(redirection_table(70000), std::invalid_argument);
  EXPECT_THROW(redirection_table(4, 6), std::invalid_argument);  // not a power of two
  EXPECT_THROW(redirection_table(4, 2), std::invalid_argument);  // fewer entries than shards
  EXPECT_THROW(redirection_table(1, 0), std::invalid_argument);
  try {
    redirection_table(4, 6);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(redirection_table(1, 1));
}

}  // namespace
}  // namespace reef::tcpip
