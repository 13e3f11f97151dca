// TCP headers: a SYN worked by hand, every option written and read back,
// every refusal with its reason, and random bytes read within bounds.
#include "tcpip/tcp_header.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tcpip/checksum.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t a1 = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t a2 = 0x0a000002;

// A header with `options` (raw bytes, a multiple of 4) and its checksum
// set for a1 -> a2.
std::vector<std::uint8_t> segment_with(std::vector<std::uint8_t> options, std::size_t payload = 0) {
  std::vector<std::uint8_t> s = {0x30, 0x39, 0x00, 0x50,              // 12345 -> 80
                                 0x00, 0x00, 0x00, 0x01,              // seq 1
                                 0x00, 0x00, 0x00, 0x00,              // ack 0
                                 0x50, tcp_flags::syn, 0xff, 0xff,    // 5 words (fixed below), SYN, window
                                 0x00, 0x00, 0x00, 0x00};             // checksum, urgent
  s[12] = static_cast<std::uint8_t>((20 + options.size()) / 4 << 4);
  s.insert(s.end(), options.begin(), options.end());
  s.resize(s.size() + payload, 0xab);
  const std::uint16_t sum = tcp_checksum(a1, a2, s);
  s[16] = static_cast<std::uint8_t>(sum >> 8);
  s[17] = static_cast<std::uint8_t>(sum);
  return s;
}

TEST(tcp_header, reads_a_syn_with_linux_options) {
  // What Linux sends on a SYN: MSS 1460, SACK permitted, timestamps, NOP,
  // window scale 7.
  auto s = segment_with({2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 42, 0, 0, 0, 0, 1, 3, 3, 7});
  tcp_header h;
  ASSERT_EQ(tcp_header::parse(s, a1, a2, h), tcp_error::none);
  EXPECT_EQ(h.source_port, 12345);
  EXPECT_EQ(h.destination_port, 80);
  EXPECT_EQ(h.seq, 1u);
  EXPECT_TRUE(h.has(tcp_flags::syn));
  EXPECT_FALSE(h.has(tcp_flags::ack));
  EXPECT_EQ(h.window, 0xffff);
  EXPECT_EQ(h.header_length, 40);
  EXPECT_EQ(h.options.mss, 1460);
  EXPECT_TRUE(h.options.sack_permitted);
  ASSERT_TRUE(h.options.timestamps);
  EXPECT_EQ((*h.options.timestamps)[0], 42u);
  EXPECT_EQ(h.options.window_scale, 7);
  EXPECT_EQ(h.options.sack_count, 0u);
}

TEST(tcp_header, writes_what_it_reads) {
  tcp_header h;
  h.source_port = 80;
  h.destination_port = 40000;
  h.seq = 0xfffffff0;
  h.ack = 7;
  h.flags = tcp_flags::ack | tcp_flags::psh;
  h.window = 501;
  h.options.timestamps = std::array<std::uint32_t, 2>{1000, 999};
  h.options.sack = {tcp_sack_block{10, 20}, tcp_sack_block{30, 40}, tcp_sack_block{0xfffffff0, 5}};
  h.options.sack_count = 3;
  EXPECT_EQ(h.options.size(), 40u) << "NOP NOP timestamps, NOP NOP and 3 SACK blocks";
  std::vector<std::uint8_t> out(tcp_header::max_size + 5, 0xee);
  const std::size_t n = h.write(out);
  ASSERT_EQ(n, 60u);
  const std::vector<std::uint8_t> options(out.begin() + 20, out.begin() + 60);
  const std::vector<std::uint8_t> linux_layout = {
      1, 1, 8, 10, 0, 0, 0x03, 0xe8, 0, 0, 0x03, 0xe7,  // the timestamps' values on 4-byte boundaries
      1, 1, 5, 26, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5};
  EXPECT_EQ(options, linux_layout);
  out.resize(n + 5, 0x77);  // a payload
  const std::uint16_t sum = tcp_checksum(a2, a1, out);
  out[16] = static_cast<std::uint8_t>(sum >> 8);
  out[17] = static_cast<std::uint8_t>(sum);
  tcp_header back;
  ASSERT_EQ(tcp_header::parse(out, a2, a1, back), tcp_error::none);
  EXPECT_EQ(back.seq, h.seq);
  EXPECT_EQ(back.ack, h.ack);
  EXPECT_EQ(back.flags, h.flags);
  EXPECT_EQ(back.window, h.window);
  EXPECT_EQ(back.header_length, 60);
  EXPECT_EQ(back.options.timestamps, h.options.timestamps);
  ASSERT_EQ(back.options.sack_count, 3u);
  EXPECT_EQ(back.options.sack[0], (tcp_sack_block{10, 20}));
  EXPECT_EQ(back.options.sack[1], (tcp_sack_block{30, 40}));
  EXPECT_EQ(back.options.sack[2], (tcp_sack_block{0xfffffff0, 5}));

  // Four blocks do not fit beside the timestamps: the first three go.
  h.options.sack[3] = tcp_sack_block{50, 60};
  h.options.sack_count = 4;
  EXPECT_EQ(h.options.sack_blocks_fitting(), 3u);
  EXPECT_EQ(h.write(out), 60u);
  h.options.timestamps.reset();
  EXPECT_EQ(h.options.sack_blocks_fitting(), 4u) << "without timestamps all four fit";
  EXPECT_EQ(h.write(out), 56u);
  EXPECT_FALSE(back.options.mss);

  // A SYN's options, padded to a multiple of 4 with zeros.
  tcp_header syn;
  syn.flags = tcp_flags::syn;
  syn.options.mss = 1460;
  syn.options.window_scale = 7;
  syn.options.sack_permitted = true;
  EXPECT_EQ(syn.options.size(), 12u) << "MSS, NOP NOP SACK-permitted, NOP window scale";
  std::vector<std::uint8_t> s(tcp_header::max_size);
  s.resize(syn.write(s));
  EXPECT_EQ(std::vector<std::uint8_t>(s.begin() + 20, s.end()),
            (std::vector<std::uint8_t>{2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7}));
  syn.options.timestamps = std::array<std::uint32_t, 2>{5, 0};
  std::vector<std::uint8_t> linux_syn(tcp_header::max_size);
  linux_syn.resize(syn.write(linux_syn));
  EXPECT_EQ(std::vector<std::uint8_t>(linux_syn.begin() + 20, linux_syn.end()),
            (std::vector<std::uint8_t>{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 0, 1, 3, 3, 7}))
      << "what Linux sends on a SYN";
  tcp_header syn_back;
  ASSERT_EQ(tcp_header::parse(s, a1, a2, syn_back, true), tcp_error::none);
  EXPECT_EQ(syn_back.options.mss, 1460);
  EXPECT_EQ(syn_back.options.window_scale, 7);
  EXPECT_TRUE(syn_back.options.sack_permitted);
}

TEST(tcp_header, refuses_each_malformed_header_with_its_reason) {
  tcp_header h;
  auto good = segment_with({}, 3);
  ASSERT_EQ(tcp_header::parse(good, a1, a2, h), tcp_error::none);
  EXPECT_EQ(tcp_header::parse(std::span(good).first(19), a1, a2, h), tcp_error::truncated);

  auto bad_sum = good;
  bad_sum[21] ^= 1;
  EXPECT_EQ(tcp_header::parse(bad_sum, a1, a2, h), tcp_error::bad_checksum);
  EXPECT_EQ(tcp_header::parse(bad_sum, a1, a2, h, true), tcp_error::none) << "a device checked it";

  auto short_offset = segment_with({});
  short_offset[12] = 0x40;  // 4 words
  EXPECT_EQ(tcp_header::parse(short_offset, a1, a2, h, true), tcp_error::bad_data_offset);
  auto long_offset = segment_with({});
  long_offset[12] = 0x60;  // 24 bytes in a 20-byte segment
  EXPECT_EQ(tcp_header::parse(long_offset, a1, a2, h, true), tcp_error::truncated);

  // Option lengths of 0 and 1 (a loop that never advances), one that runs
  // past the header, a kind with no room for its length.
  EXPECT_EQ(tcp_header::parse(segment_with({99, 0, 0, 0}), a1, a2, h), tcp_error::bad_option);
  EXPECT_EQ(tcp_header::parse(segment_with({99, 1, 0, 0}), a1, a2, h), tcp_error::bad_option);
  EXPECT_EQ(tcp_header::parse(segment_with({99, 5, 0, 0}), a1, a2, h), tcp_error::bad_option);
  EXPECT_EQ(tcp_header::parse(segment_with({1, 1, 1, 99}), a1, a2, h), tcp_error::bad_option);

  // Known options with the wrong length.
  EXPECT_EQ(tcp_header::parse(segment_with({2, 3, 5, 0}), a1, a2, h), tcp_error::bad_option_length);
  EXPECT_EQ(tcp_header::parse(segment_with({3, 4, 7, 0}), a1, a2, h), tcp_error::bad_option_length);
  EXPECT_EQ(tcp_header::parse(segment_with({4, 3, 0, 0}), a1, a2, h), tcp_error::bad_option_length);
  EXPECT_EQ(tcp_header::parse(segment_with({5, 2, 0, 0}), a1, a2, h), tcp_error::bad_option_length);
  EXPECT_EQ(tcp_header::parse(segment_with({5, 6, 0, 0, 0, 0, 0, 0}), a1, a2, h), tcp_error::bad_option_length);
  EXPECT_EQ(tcp_header::parse(segment_with({8, 8, 0, 0, 0, 0, 0, 0}), a1, a2, h), tcp_error::bad_option_length);

  // A window scale past 14 reads as 14 (RFC 7323 2.3).
  ASSERT_EQ(tcp_header::parse(segment_with({3, 3, 0xff, 0}), a1, a2, h), tcp_error::none);
  EXPECT_EQ(h.options.window_scale, 14);

  // Unknown options are skipped by their length; nothing is read past an
  // end of options.
  ASSERT_EQ(tcp_header::parse(segment_with({99, 4, 7, 7, 2, 4, 1, 0}), a1, a2, h), tcp_error::none);
  EXPECT_EQ(h.options.mss, 256);
  ASSERT_EQ(tcp_header::parse(segment_with({0, 2, 3, 5}), a1, a2, h), tcp_error::none);
  EXPECT_FALSE(h.options.mss);
}

TEST(tcp_header, garbage_is_refused_or_read_within_its_bounds) {
  // Random segments, some with random option bytes: parse() answers every
  // one (ASan checks it reads nothing past the span).
  std::mt19937 random(9293);
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::uint8_t> s(random() % 80);
    for (auto& b : s) b = static_cast<std::uint8_t>(random());
    tcp_header h;
    const tcp_error e = tcp_header::parse(s, a1, a2, h, round % 2 == 0);
    if (e == tcp_error::none) {
      ++accepted;
      EXPECT_LE(h.header_length, s.size()) << "round " << round;
      EXPECT_LE(h.options.sack_count, tcp_options::sack_blocks_max) << "round " << round;
    }
  }
  EXPECT_GT(accepted, 0) << "some random headers are well-formed";
}

}  // namespace
}  // namespace reef::tcpip
