// Packets: fragments, headers in front, sharing, trimming.
#include "net/packet.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/sanitizers.h"

namespace reef {
namespace {

std::string bytes_of(const packet& p) {
  std::string s;
  for (const auto& f : p.fragments()) s.append(f.base, f.size);
  return s;
}

TEST(packet, gathers_fragments_in_order) {
  packet p = packet::copy_of("hello ");
  p.append(temporary_buffer<char>::copy_of("wide "));
  p.append(packet::copy_of("world"));
  EXPECT_EQ(p.nr_frags(), 3u);
  EXPECT_EQ(p.len(), 16u);
  EXPECT_EQ(bytes_of(p), "hello wide world");
  EXPECT_EQ(p.linearize().view(), "hello wide world");
  packet empty;
  empty.append(temporary_buffer<char>());
  EXPECT_EQ(empty.len(), 0u);
  EXPECT_EQ(empty.nr_frags(), 0u);
}

TEST(packet, headers_go_in_front_without_moving_the_payload) {
  auto payload = temporary_buffer<char>::copy_of("payload");
  const char* where = payload.get();
  packet p(std::move(payload));
  std::memcpy(p.prepend_header(4), "TCP:", 4);
  std::memcpy(p.prepend_header(3), "IP:", 3);
  EXPECT_EQ(bytes_of(p), "IP:TCP:payload");
  EXPECT_EQ(p.nr_frags(), 2u) << "both headers share one fragment";
  EXPECT_EQ(p.fragments().back().base, where) << "the payload was not copied";
  struct hdr {
    char tag[2];
  };
  auto* h = p.prepend_header<hdr>();
  std::memcpy(h->tag, "E:", 2);
  EXPECT_EQ(bytes_of(p), "E:IP:TCP:payload");
}

TEST(packet, trims_front_and_back_across_fragments) {
  packet p = packet::copy_of("abc");
  p.append(packet::copy_of("def"));
  p.append(packet::copy_of("ghi"));
  p.trim_front(4);
  EXPECT_EQ(bytes_of(p), "efghi");
  p.trim_back_to(3);
  EXPECT_EQ(bytes_of(p), "efg");
  EXPECT_EQ(p.len(), 3u);
  p.trim_front(3);
  EXPECT_EQ(p.len(), 0u);
  EXPECT_EQ(bytes_of(p), "");
}

TEST(packet, shares_keep_the_bytes_alive) {
  int released = 0;
  packet shared;
  {
    auto* data = new char[6];
    std::memcpy(data, "abcdef", 6);
    packet p(fragment{data, 6}, make_deleter([data, &released] {
               delete[] data;
               ++released;
             }));
    shared = p.share(2, 3);
    EXPECT_EQ(bytes_of(shared), "cde");
    EXPECT_EQ(bytes_of(p), "abcdef");
  }
  EXPECT_EQ(released, 0) << "the share still holds the bytes";
  EXPECT_EQ(shared.linearize().view(), "cde");
  shared = packet();
  EXPECT_EQ(released, 1);
}

TEST(packet, linearize_of_one_fragment_copies_nothing) {
  packet p = packet::copy_of("one");
  const char* where = p.fragments().front().base;
  auto b = p.linearize();
  EXPECT_EQ(b.get(), where);
}

TEST(packet, linearize_of_an_rvalue_hands_the_memory_over) {
  int released = 0;
  auto* data = new char[5];
  std::memcpy(data, "bytes", 5);
  packet p(fragment{data, 5}, make_deleter([data, &released] {
             delete[] data;
             ++released;
           }));
  p.trim_front(1);
  temporary_buffer<char> b = std::move(p).linearize();
  EXPECT_EQ(p.len(), 0u) << "the packet is left empty";
  EXPECT_EQ(p.nr_frags(), 0u);
  EXPECT_EQ(b.get(), data + 1) << "no copy";
  EXPECT_EQ(b.view(), "ytes");
  EXPECT_EQ(released, 0);
  b = temporary_buffer<char>();
  EXPECT_EQ(released, 1) << "the buffer released it, once";

  // A header and its payload: copied into one buffer; a header in the
  // same fragment as a payload keeps both deleters alive.
  packet two = packet::copy_of("data");
  std::memcpy(two.prepend_header(2), "h:", 2);
  EXPECT_EQ(std::move(two).linearize().view(), "h:data");
  EXPECT_EQ(two.len(), 0u);
  packet p2 = packet::copy_of("abc");
  p2.append(packet::copy_of("def"));
  p2.trim_front(3);  // one fragment left, two deleters
  EXPECT_EQ(p2.nr_frags(), 1u);
  EXPECT_EQ(std::move(p2).linearize().view(), "def");
}

TEST(packet, header_buffers_are_reused_on_their_thread) {
  // Many packets' headers in a row, as a sending shard makes them: each
  // gets room, none sees another's bytes, and the buffers a thread keeps
  // are freed when it ends (ASan checks that in its runs, where the
  // buffers are not kept).
  auto send_many = [] {
    std::vector<packet> live;
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 100; ++i) {
        packet p = packet::copy_of("data");
        std::memcpy(p.prepend_header(4), "head", 4);
        EXPECT_EQ(bytes_of(p), "headdata");
        live.push_back(std::move(p));  // 100 alive at once: past what a thread keeps
      }
      live.clear();
    }
  };
  send_many();
  std::thread other(send_many);
  other.join();
#ifndef REEF_ASAN
  packet a = packet::copy_of("x");
  char* first = a.prepend_header(1);
  a = packet();
  packet b = packet::copy_of("y");
  EXPECT_EQ(b.prepend_header(1), first) << "the buffer just freed is taken again";
#endif
}

}  // namespace
}  // namespace reef
