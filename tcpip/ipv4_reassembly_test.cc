// IPv4 reassembly: pieces in any order, duplicates, overlaps, timeouts,
// the memory cap under a flood, the bound on pieces, and lies about sizes.
#include "tcpip/ipv4_reassembly.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;
using time_point = ipv4_reassembler::time_point;

const time_point t0 = time_point(1000s);

std::string data_of(std::size_t n, char seed = 'a') {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

struct piece {
  std::size_t offset;
  std::size_t length;
  bool more;
};

ipv4_header header(const piece& p, std::uint16_t id = 1) {
  ipv4_header h;
  h.id = id;
  h.source = 0x0a000001;
  h.destination = 0x0a000002;
  h.protocol = 17;
  h.fragment_offset = static_cast<std::uint16_t>(p.offset);
  h.more_fragments = p.more;
  h.total_length = static_cast<std::uint16_t>(ipv4_header::min_size + p.length);
  return h;
}

std::optional<packet> add(ipv4_reassembler& r, const std::string& whole, const piece& p, std::uint16_t id = 1,
                          time_point now = t0) {
  return r.add(header(p, id), packet::copy_of(std::string_view(whole).substr(p.offset, p.length)), now);
}

std::string text_of(packet& p) {
  auto b = p.linearize();
  return std::string(b.get(), b.size());
}

TEST(ipv4_reassembly, pieces_in_any_order_make_the_datagram) {
  const std::string whole = data_of(3000);
  const std::vector<piece> pieces = {{0, 1480, true}, {1480, 1480, true}, {2960, 40, false}};
  for (const auto& order : std::vector<std::vector<int>>{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {2, 0, 1}}) {
    ipv4_reassembler r;
    std::optional<packet> done;
    for (std::size_t i = 0; i < order.size(); ++i) {
      done = add(r, whole, pieces[order[i]]);
      EXPECT_EQ(done.has_value(), i + 1 == order.size()) << "after " << i + 1 << " pieces";
    }
    ASSERT_TRUE(done);
    EXPECT_EQ(text_of(*done), whole);
    EXPECT_EQ(r.memory(), 0u);
    EXPECT_EQ(r.datagrams(), 0u);
    EXPECT_EQ(r.stats().reassembled, 1u);
  }
}

TEST(ipv4_reassembly, a_duplicate_is_ignored_and_an_overlap_drops_the_datagram) {
  const std::string whole = data_of(2000);
  ipv4_reassembler r;
  EXPECT_FALSE(add(r, whole, {0, 1000, true}));
  EXPECT_FALSE(add(r, whole, {0, 1000, true}));
  EXPECT_EQ(r.stats().duplicates, 1u);
  EXPECT_EQ(r.memory(), 1000 + reassembly_limits::piece_overhead + reassembly_limits::datagram_overhead);
  EXPECT_FALSE(add(r, whole, {992, 1008, false}));  // starts inside the first
  EXPECT_EQ(r.stats().overlaps, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.memory(), 0u);
  // Overlapping the next piece from before it, too.
  EXPECT_FALSE(add(r, whole, {1000, 1000, false}));
  EXPECT_FALSE(add(r, whole, {0, 1008, true}));
  EXPECT_EQ(r.stats().overlaps, 2u);
  EXPECT_EQ(r.memory(), 0u);
}

TEST(ipv4_reassembly, unfinished_datagrams_time_out) {
  const std::string whole = data_of(2000);
  ipv4_reassembler r({.timeout = 30s});
  EXPECT_FALSE(add(r, whole, {0, 1000, true}, 1, t0));
  EXPECT_FALSE(add(r, whole, {0, 1000, true}, 2, t0 + 20s));
  r.expire(t0 + 29s);
  EXPECT_EQ(r.datagrams(), 2u);
  r.expire(t0 + 30s);
  EXPECT_EQ(r.datagrams(), 1u);
  EXPECT_EQ(r.stats().timed_out, 1u);
  EXPECT_EQ(r.memory(), 1000 + reassembly_limits::piece_overhead + reassembly_limits::datagram_overhead);
  // The one left still completes.
  auto done = add(r, whole, {1000, 1000, false}, 2, t0 + 31s);
  ASSERT_TRUE(done);
  EXPECT_EQ(text_of(*done), whole);
}

TEST(ipv4_reassembly, a_flood_of_first_pieces_stays_under_the_memory_cap) {
  const std::string whole = data_of(2000);
  ipv4_reassembler r({.memory_max = 10'000});
  for (std::uint16_t id = 0; id < 1000; ++id) {
    EXPECT_FALSE(add(r, whole, {0, 1000, true}, id, t0 + std::chrono::milliseconds(id)));
    ASSERT_LE(r.memory(), 10'000u) << "after datagram " << id;
  }
  const std::size_t each = 1000 + reassembly_limits::piece_overhead + reassembly_limits::datagram_overhead;
  EXPECT_EQ(r.datagrams(), 10'000 / each);
  EXPECT_EQ(r.stats().evicted, 1000 - 10'000 / each);
  // The newest are the ones kept: they complete.
  auto done = add(r, whole, {1000, 1000, false}, 999, t0 + 1s);
  ASSERT_TRUE(done);
  EXPECT_EQ(text_of(*done), whole);
  // A piece larger than the cap is refused outright.
  ipv4_reassembler small({.memory_max = 500});
  EXPECT_FALSE(add(small, whole, {0, 1000, true}));
  EXPECT_EQ(small.memory(), 0u);
}

TEST(ipv4_reassembly, a_flood_of_tiny_last_pieces_is_bounded_by_what_it_holds) {
  const std::string whole = data_of(16);
  ipv4_reassembler r({.memory_max = 100'000});
  for (std::uint32_t n = 0; n < 20'000; ++n) {
    ipv4_header h = header({8, 1, false}, static_cast<std::uint16_t>(n));
    h.source += n >> 16;
    r.add(h, packet::copy_of(whole.substr(8, 1)), t0);
    ASSERT_LE(r.memory(), 100'000u);
  }
  EXPECT_LE(r.datagrams(), 100'000 / (reassembly_limits::datagram_overhead + reassembly_limits::piece_overhead));
}

TEST(ipv4_reassembly, a_piece_that_is_refused_evicts_no_one) {
  const std::string whole = data_of(2000);
  ipv4_reassembler r({.memory_max = 3 * (1000 + reassembly_limits::piece_overhead + reassembly_limits::datagram_overhead)});
  for (std::uint16_t id = 0; id < 3; ++id) EXPECT_FALSE(add(r, whole, {0, 1000, true}, id));
  EXPECT_EQ(r.datagrams(), 3u);
  EXPECT_FALSE(add(r, whole, {0, 1000, true}, 2));  // a duplicate, at the cap
  EXPECT_EQ(r.stats().duplicates, 1u);
  EXPECT_EQ(r.stats().evicted, 0u);
  EXPECT_EQ(r.datagrams(), 3u);
}

TEST(ipv4_reassembly, a_repeated_piece_that_changes_its_last_flag_drops_the_datagram) {
  const std::string whole = data_of(16);
  ipv4_reassembler r;
  EXPECT_FALSE(add(r, whole, {0, 8, true}));
  EXPECT_FALSE(add(r, whole, {8, 8, true}));
  EXPECT_FALSE(add(r, whole, {8, 8, false}));  // the same bytes, now the last: a lie, not a duplicate
  EXPECT_EQ(r.stats().malformed, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.memory(), 0u);
  // An empty piece drops a datagram that was there too.
  EXPECT_FALSE(add(r, whole, {0, 8, true}));
  ipv4_header empty = header({8, 0, false});
  EXPECT_FALSE(r.add(empty, packet(), t0));
  EXPECT_EQ(r.datagrams(), 0u);
}

TEST(ipv4_reassembly, too_many_pieces_drop_the_datagram) {
  const std::string whole = data_of(80);
  ipv4_reassembler r({.fragments_max = 4});
  for (std::size_t i = 0; i < 4; ++i) EXPECT_FALSE(add(r, whole, {i * 8, 8, true}));
  EXPECT_FALSE(add(r, whole, {32, 8, true}));
  EXPECT_EQ(r.stats().too_many, 1u);
  EXPECT_EQ(r.datagrams(), 0u);
  EXPECT_EQ(r.memory(), 0u);
}

TEST(ipv4_reassembly, lies_about_sizes_drop_the_datagram) {
  const std::string whole = data_of(3000);
  ipv4_reassembler r;
  // A piece that is not the last, of a length not a multiple of 8.
  EXPECT_FALSE(add(r, whole, {0, 1001, true}));
  EXPECT_EQ(r.stats().malformed, 1u);
  // A piece past the end the last piece gave.
  EXPECT_FALSE(add(r, whole, {1000, 500, false}));
  EXPECT_FALSE(add(r, whole, {1504, 800, true}));
  EXPECT_EQ(r.stats().malformed, 2u);
  EXPECT_EQ(r.datagrams(), 0u);
  // Two last pieces that disagree.
  EXPECT_FALSE(add(r, whole, {1000, 500, false}));
  EXPECT_FALSE(add(r, whole, {2000, 500, false}));
  EXPECT_EQ(r.stats().malformed, 3u);
  // A last piece that ends before pieces already held.
  EXPECT_FALSE(add(r, whole, {2000, 504, true}));
  EXPECT_FALSE(add(r, whole, {0, 1000, false}));
  EXPECT_EQ(r.stats().malformed, 4u);
  EXPECT_EQ(r.memory(), 0u);
  EXPECT_EQ(r.datagrams(), 0u);
}

TEST(ipv4_reassembly, random_pieces_never_pass_the_cap_and_only_whole_datagrams_come_out) {
  std::mt19937 random(815);
  const std::string whole = data_of(65535);
  ipv4_reassembler r({.memory_max = 64 * 1024, .fragments_max = 32});
  for (int round = 0; round < 20000; ++round) {
    const auto id = static_cast<std::uint16_t>(random() % 8);
    const std::size_t offset = (random() % 64) * 8;
    const bool more = random() % 4 != 0;
    std::size_t length = 8 * (1 + random() % 32);
    if (!more) length -= random() % 8;
    auto done = add(r, whole, {offset, length, more}, id, t0 + std::chrono::milliseconds(round));
    ASSERT_LE(r.memory(), 64u * 1024) << "round " << round;
    if (done) EXPECT_EQ(text_of(*done), whole.substr(0, done->len())) << "round " << round;
    if (round % 1000 == 0) r.expire(t0 + std::chrono::milliseconds(round));
  }
  EXPECT_GT(r.stats().reassembled, 0u) << "no datagram came out whole: the test is not testing";
}

}  // namespace
}  // namespace reef::tcpip
