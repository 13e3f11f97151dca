// Sequence numbers across the wrap, SipHash against its published
// vectors, and initial sequence numbers that differ by 4-tuple and grow
// with the clock.
#include "tcpip/tcp_sequence.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

TEST(tcp_seq, compares_modulo_2_to_the_32) {
  const tcp_seq a{0xfffffff0};
  const tcp_seq b = a + 32;
  EXPECT_EQ(b.raw(), 16u) << "wrapped";
  EXPECT_LT(a, b);
  EXPECT_GT(b, a);
  EXPECT_EQ(b - a, 32);
  EXPECT_EQ(a - b, -32);
  EXPECT_LE(a, a);
  EXPECT_GE(b, b);
  EXPECT_LT(tcp_seq{0}, tcp_seq{0x7fffffff}) << "just under half the space ahead";
  EXPECT_GT(tcp_seq{0}, tcp_seq{0x80000001}) << "more than half ahead reads as behind";
  tcp_seq c{5};
  c += 0xfffffffb;
  EXPECT_EQ(c, tcp_seq{0});
  EXPECT_EQ(c - 1, tcp_seq{0xffffffff});
}

TEST(siphash24, matches_the_reference_vectors) {
  // The SipHash paper's key 00..0f; messages 00..(n-1).
  std::array<std::uint8_t, 16> key;
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  std::vector<std::uint8_t> message;
  EXPECT_EQ(siphash24(key, message), 0x726fdb47dd0e0e31u) << "empty";
  for (std::uint8_t i = 0; i < 15; ++i) message.push_back(i);
  EXPECT_EQ(siphash24(key, message), 0xa129ca6149be45e5u) << "15 bytes (the paper's example)";
}

TEST(isn_generator, differs_by_4_tuple_and_grows_with_the_clock) {
  const isn_generator isn(std::array<std::uint8_t, 16>{1, 2, 3});
  std::set<std::uint32_t> seen;
  for (std::uint16_t port = 1000; port < 1100; ++port) seen.insert(isn(0x0a000001, port, 0x0a000002, 80, 0ns).raw());
  EXPECT_EQ(seen.size(), 100u) << "every 4-tuple its own offset";
  const tcp_seq t0 = isn(0x0a000001, 1000, 0x0a000002, 80, 1s);
  EXPECT_EQ(isn(0x0a000001, 1000, 0x0a000002, 80, 1s + 4us) - t0, 1) << "one tick every 4 us";
  EXPECT_EQ(isn(0x0a000001, 1000, 0x0a000002, 80, 2s) - t0, 250000) << "a second later: 250,000 ticks on";
  const isn_generator other(std::array<std::uint8_t, 16>{9});
  EXPECT_NE(other(0x0a000001, 1000, 0x0a000002, 80, 1s), t0) << "another secret, another number";
  const isn_generator random_secret;
  const isn_generator another_random;
  EXPECT_NE(random_secret(1, 2, 3, 4, 0ns), another_random(1, 2, 3, 4, 0ns)) << "secrets from the random source";
}

}  // namespace
}  // namespace reef::tcpip
