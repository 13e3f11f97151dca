// The virtual link: frames cross byte for byte to the queue their hash
// picks, faults follow their seed, full queues and long frames are counted,
// the pcap file reads back with tcpdump, two threads can drive the ends,
// and the offloads do what a NIC's do.
#include "tcpip/virtual_link.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tcpip/checksum.h"
#include "tcpip/ipv4_header.h"
#include "tcpip/udp_header.h"
#include "tcpip/wire.h"

namespace reef::tcpip {
namespace {

constexpr std::uint32_t a1 = 0x0a000001;
constexpr std::uint32_t a2 = 0x0a000002;

// An Ethernet + IPv4 + UDP frame from end 0 to end 1 whose data is `id`.
std::vector<std::uint8_t> udp_frame(std::uint16_t source_port, std::uint32_t id, std::size_t data_size = 4) {
  const std::size_t ip_size = ipv4_header::min_size + udp_header::size + data_size;
  std::vector<std::uint8_t> f(ethernet_header::size + ip_size);
  ethernet_header eth{*ethernet_address::parse("02:00:00:00:00:02"), *ethernet_address::parse("02:00:00:00:00:01"),
                      static_cast<std::uint16_t>(ether_type::ipv4)};
  eth.write(f);
  ipv4_header ip;
  ip.total_length = static_cast<std::uint16_t>(ip_size);
  ip.protocol = static_cast<std::uint8_t>(ip_protocol::udp);
  ip.source = a1;
  ip.destination = a2;
  ip.write(std::span(f).subspan(ethernet_header::size));
  udp_header udp{source_port, 9, static_cast<std::uint16_t>(udp_header::size + data_size), 0};
  udp.write(std::span(f).subspan(ethernet_header::size + ipv4_header::min_size));
  for (std::size_t i = 0; i < data_size; ++i) f[f.size() - data_size + i] = static_cast<std::uint8_t>(id >> (8 * (i % 4)));
  return f;
}

packet packet_of(const std::vector<std::uint8_t>& b) {
  return packet::copy_of(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

std::vector<std::uint8_t> bytes_of(packet& p) {
  auto b = p.linearize();
  return std::vector<std::uint8_t>(b.get(), b.get() + b.size());
}

void send(device_queue& q, const std::vector<std::uint8_t>& frame) {
  std::array<tx_frame, 1> one{tx_frame{packet_of(frame), {}}};
  ASSERT_EQ(q.transmit(one), 1u);
}

std::vector<received_frame> receive_all(device_queue& q) {
  std::vector<received_frame> out;
  while (q.receive(out, 16) > 0) {
  }
  return out;
}

TEST(virtual_link, a_frame_crosses_byte_for_byte_both_ways) {
  virtual_link link;
  EXPECT_EQ(link.end(0).info().mac.to_string(), "02:00:00:00:00:01");
  EXPECT_EQ(link.end(1).info().mac.to_string(), "02:00:00:00:00:02");
  auto q0 = link.end(0).open_queue(0);
  auto q1 = link.end(1).open_queue(0);
  const auto frame = udp_frame(1000, 42);
  send(*q0, frame);
  send(*q1, frame);
  auto at1 = receive_all(*q1);
  auto at0 = receive_all(*q0);
  ASSERT_EQ(at1.size(), 1u);
  ASSERT_EQ(at0.size(), 1u);
  EXPECT_EQ(bytes_of(at1[0].frame), frame);
  EXPECT_EQ(bytes_of(at0[0].frame), frame);
  EXPECT_EQ(at1[0].rss_hash, toeplitz_hash().ipv4_ports(a1, a2, 1000, 9));
  EXPECT_EQ(q0->stats().tx_frames, 1u);
  EXPECT_EQ(q1->stats().rx_frames, 1u);
  EXPECT_EQ(q1->stats().rx_bytes, frame.size());
  EXPECT_EQ(link.stats().delivered, 2u);
  EXPECT_THROW(link.end(0).open_queue(0), std::invalid_argument) << "opened twice";
  EXPECT_THROW(link.end(0).open_queue(1), std::invalid_argument) << "no such queue";
  EXPECT_THROW(link.end(2), std::invalid_argument);
}

TEST(virtual_link, each_frame_lands_on_the_queue_its_hash_picks) {
  for (bool supplies_hash : {true, false}) {
    toeplitz_key other = default_toeplitz_key;
    other[0] ^= 0xff;  // a device whose hash is not the stack's
    virtual_link link({.queues = 4, .rss_hash = supplies_hash, .rss_key = other});
    auto sender = link.end(0).open_queue(0);
    std::vector<std::unique_ptr<device_queue>> receivers;
    for (unsigned i = 0; i < 4; ++i) receivers.push_back(link.end(1).open_queue(i));
    const toeplitz_hash device_hash(other);
    redirection_table table(4, 128);
    for (std::uint16_t port = 2000; port < 2200; ++port) send(*sender, udp_frame(port, port));
    std::size_t total = 0;
    for (unsigned i = 0; i < 4; ++i) {
      auto got = receive_all(*receivers[i]);
      EXPECT_GT(got.size(), 20u) << "queue " << i;
      total += got.size();
      for (auto& f : got) {
        auto bytes = bytes_of(f.frame);
        const std::uint16_t port = static_cast<std::uint16_t>(bytes[34] << 8 | bytes[35]);
        const std::uint32_t h = device_hash.ipv4_ports(a1, a2, port, 9);
        EXPECT_EQ(table.shard_of(h), i) << "port " << port;
        EXPECT_EQ(f.rss_hash.has_value(), supplies_hash);
        if (f.rss_hash) EXPECT_EQ(*f.rss_hash, h);
      }
    }
    EXPECT_EQ(total, 200u);
  }
}

// The order of the ids received at end 1 for `faults`.
std::vector<std::uint32_t> run_with(link_faults faults, virtual_link_stats* stats = nullptr) {
  virtual_link link({.faults = faults});
  auto q0 = link.end(0).open_queue(0);
  auto q1 = link.end(1).open_queue(0);
  std::vector<std::uint32_t> ids;
  for (std::uint32_t id = 0; id < 500; ++id) {
    send(*q0, udp_frame(1000, id));
    if (id % 7 == 0) {
      for (auto& f : receive_all(*q1)) {
        auto b = bytes_of(f.frame);
        ids.push_back(b[42] | b[43] << 8 | b[44] << 16 | static_cast<std::uint32_t>(b[45]) << 24);
      }
    }
  }
  for (auto& f : receive_all(*q1)) {
    auto b = bytes_of(f.frame);
    ids.push_back(b[42] | b[43] << 8 | b[44] << 16 | static_cast<std::uint32_t>(b[45]) << 24);
  }
  if (stats != nullptr) *stats = link.stats();
  return ids;
}

TEST(virtual_link, a_queue_that_found_nothing_is_told_when_frames_arrive) {
  virtual_link link({.queues = 2});
  EXPECT_EQ(link.end(1).info().redirection.size(), 128u);
  EXPECT_EQ(link.end(1).info().rss_key, default_toeplitz_key);
  auto q0 = link.end(0).open_queue(0);
  std::unique_ptr<device_queue> q1[2] = {link.end(1).open_queue(0), link.end(1).open_queue(1)};
  int told[2] = {0, 0};
  for (unsigned i = 0; i < 2; ++i) q1[i]->on_arrival([&told, i] { ++told[i]; });
  std::vector<received_frame> got;
  EXPECT_EQ(q1[0]->receive(got, 8), 0u);  // armed
  EXPECT_EQ(q1[1]->receive(got, 8), 0u);
  // Ports whose flows the table sends to queue 0.
  const toeplitz_hash h;
  const redirection_table table(2, 128);
  std::vector<std::uint16_t> to_queue0;
  for (std::uint16_t port = 1000; to_queue0.size() < 3; ++port) {
    if (table.shard_of(h.ipv4_ports(a1, a2, port, 9)) == 0) to_queue0.push_back(port);
  }
  send(*q0, udp_frame(to_queue0[0], 1));
  EXPECT_EQ(told[0], 1);
  EXPECT_EQ(told[1], 0) << "the other queue got nothing";
  send(*q0, udp_frame(to_queue0[1], 2));
  EXPECT_EQ(told[0], 1) << "told once until the queue is found empty again";
  EXPECT_EQ(receive_all(*q1[0]).size(), 2u);  // ... which it now is
  send(*q0, udp_frame(to_queue0[2], 3));
  EXPECT_EQ(told[0], 2);
}

TEST(virtual_link, faults_follow_their_seed) {
  const link_faults faults{.loss = 0.1, .duplicate = 0.1, .reorder = 0.1, .corrupt = 0.05, .seed = 7};
  virtual_link_stats s;
  const auto first = run_with(faults, &s);
  EXPECT_EQ(run_with(faults), first) << "the same seed, another outcome";
  link_faults other = faults;
  other.seed = 8;
  EXPECT_NE(run_with(other), first);
  EXPECT_EQ(s.carried, 500u);
  EXPECT_GT(s.lost, 20u);
  EXPECT_GT(s.duplicated, 20u);
  EXPECT_GT(s.reordered, 20u);
  EXPECT_GT(s.corrupted, 5u);
  EXPECT_EQ(s.delivered, s.carried - s.lost + s.duplicated);
  EXPECT_EQ(first.size(), s.delivered);
  bool out_of_order = false;
  for (std::size_t i = 1; i < first.size(); ++i) out_of_order |= first[i] < first[i - 1];
  EXPECT_TRUE(out_of_order);
  // Without faults everything arrives, in order.
  const auto clean = run_with({});
  ASSERT_EQ(clean.size(), 500u);
  for (std::uint32_t i = 0; i < 500; ++i) EXPECT_EQ(clean[i], i);
}

TEST(virtual_link, a_receiver_polling_between_sends_still_sees_frames_out_of_order) {
  virtual_link link({.faults = {.reorder = 0.2, .seed = 3}});
  auto q0 = link.end(0).open_queue(0);
  auto q1 = link.end(1).open_queue(0);
  std::vector<std::uint32_t> ids;
  auto take = [&] {
    for (auto& f : receive_all(*q1)) {
      auto b = bytes_of(f.frame);
      ids.push_back(b[42] | b[43] << 8 | b[44] << 16 | static_cast<std::uint32_t>(b[45]) << 24);
    }
  };
  for (std::uint32_t id = 0; id < 200; ++id) {
    send(*q0, udp_frame(1000, id));
    take();  // a poller: after every frame
  }
  for (int i = 0; i < 20; ++i) take();  // the last one held goes after its polls
  ASSERT_EQ(ids.size(), 200u) << "a held frame never came";
  std::size_t out_of_order = 0;
  for (std::size_t i = 1; i < ids.size(); ++i) out_of_order += ids[i] < ids[i - 1] ? 1 : 0;
  EXPECT_GT(out_of_order, 10u);
}

TEST(virtual_link, full_queues_and_long_frames_are_counted_not_kept) {
  virtual_link link({.mtu = 100, .queue_frames_max = 4});
  auto q0 = link.end(0).open_queue(0);
  auto q1 = link.end(1).open_queue(0);
  for (std::uint32_t id = 0; id < 10; ++id) send(*q0, udp_frame(1000, id));
  send(*q0, udp_frame(1000, 99, 100 - 28 + 1));  // one byte over the MTU
  EXPECT_EQ(receive_all(*q1).size(), 4u);
  const auto s = link.stats();
  EXPECT_EQ(s.overflowed, 6u);
  EXPECT_EQ(s.too_long, 1u);
  EXPECT_EQ(s.delivered, 4u);
}

TEST(virtual_link, refuses_options_that_cannot_work) {
  EXPECT_THROW(virtual_link({.queues = 0}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.faults = {.loss = 1.5}}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.faults = {.corrupt = -0.1}}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.pcap_path = "/nonexistent-dir/x.pcap"}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.ends = 1}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.ends = 3, .queues_per_end = {1, 2}}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.queues_per_end = {1, 0}}), std::invalid_argument);
  EXPECT_THROW(virtual_link({.faults = {.delay = std::chrono::microseconds(-1)}}), std::invalid_argument);
  virtual_link two;
  EXPECT_THROW(two.end(2), std::invalid_argument);
}

// Delay: nothing arrives before it is due (checked at once: no timing
// race), everything after. Rate: frames go one after another at the
// rate, so that at once only the first is there.
// A TCP frame from end 0 to end 1: 12 bytes of options (NOP, NOP, a
// timestamp), `data_size` bytes of data counting up, sequence number
// `seq`, flags CWR|PSH|ACK|FIN; its checksum field holds the pseudo
// header's sum, as a stack that leaves the checksum to the device puts it.
constexpr std::size_t tcp_at = ethernet_header::size + ipv4_header::min_size;
constexpr std::size_t tcp_header_size = 32;

std::vector<std::uint8_t> tcp_frame(std::uint32_t seq, std::size_t data_size) {
  const std::size_t ip_size = ipv4_header::min_size + tcp_header_size + data_size;
  std::vector<std::uint8_t> f(ethernet_header::size + ip_size);
  ethernet_header eth{*ethernet_address::parse("02:00:00:00:00:02"), *ethernet_address::parse("02:00:00:00:00:01"),
                      static_cast<std::uint16_t>(ether_type::ipv4)};
  eth.write(f);
  ipv4_header ip;
  ip.id = 100;
  ip.total_length = static_cast<std::uint16_t>(ip_size);
  ip.protocol = static_cast<std::uint8_t>(ip_protocol::tcp);
  ip.source = a1;
  ip.destination = a2;
  ip.write(std::span(f).subspan(ethernet_header::size));
  auto t = std::span(f).subspan(tcp_at);
  wire::put16(t, 0, 40000);
  wire::put16(t, 2, 80);
  wire::put32(t, 4, seq);
  wire::put32(t, 8, 7);
  t[12] = (tcp_header_size / 4) << 4;
  t[13] = 0x80 | 0x10 | 0x08 | 0x01;  // CWR ACK PSH FIN
  wire::put16(t, 14, 65535);
  t[20] = 1;
  t[21] = 1;
  t[22] = 8;
  t[23] = 10;
  wire::put32(t, 24, 1234);
  wire::put32(t, 28, 5678);
  for (std::size_t i = 0; i < data_size; ++i) t[tcp_header_size + i] = static_cast<std::uint8_t>(i * 7);
  checksummer c;
  c.add_words(ipv4_pseudo_header_sum(a1, a2, ip_protocol::tcp, static_cast<std::uint16_t>(tcp_header_size + data_size)));
  wire::put16(t, 16, c.partial());
  return f;
}

// Whether a frame's IPv4 header and TCP checksums hold.
bool checksums_hold(const std::vector<std::uint8_t>& f) {
  auto ip = std::span(f).subspan(ethernet_header::size);
  if (internet_checksum(ip.subspan(0, ipv4_header::min_size)) != 0) return false;
  const std::size_t tcp_size = wire::get16(ip, 2) - ipv4_header::min_size;
  checksummer c;
  c.add_words(ipv4_pseudo_header_sum(a1, a2, ip_protocol::tcp, static_cast<std::uint16_t>(tcp_size)));
  c.add(std::span(f).subspan(tcp_at, tcp_size));
  return c.get() == 0;
}

void send_offloaded(device_queue& q, const std::vector<std::uint8_t>& frame, std::uint16_t segment_size) {
  tx_offload o;
  o.l4_length = tcp_header_size;
  o.l4_checksum = true;
  o.segment_size = segment_size;
  std::array<tx_frame, 1> one{tx_frame{packet_of(frame), o}};
  ASSERT_EQ(q.transmit(one), 1u);
}

// What end 1 of a new link receives when end 0 sends `frame` with its
// checksum (and, for segment_size > 0, its cutting) left to the link.
std::vector<received_frame> cross_offloaded(const virtual_link_options& options, const std::vector<std::uint8_t>& frame,
                                            std::uint16_t segment_size, virtual_link_stats* stats = nullptr) {
  virtual_link link(options);
  auto a = link.end(0).open_queue(0);
  auto b = link.end(1).open_queue(0);
  send_offloaded(*a, frame, segment_size);
  auto got = receive_all(*b);
  if (stats != nullptr) {
    *stats = link.stats();
  }
  return got;
}

TEST(virtual_link, a_checksum_left_to_the_link_is_finished_or_passed_on_as_checked) {
  const auto sent = tcp_frame(1000, 100);
  {
    // The receiving end takes such frames as checked: they cross untouched.
    auto got = cross_offloaded({.offloads = {.rx_checksum_verified = true, .tx_checksum = true}}, sent, 0);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].checksum, checksum_status::good);
    EXPECT_EQ(bytes_of(got[0].frame), sent);
  }
  {
    // It does not: the link finishes the checksum, as a NIC would.
    auto got = cross_offloaded({.offloads = {.tx_checksum = true}}, sent, 0);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].checksum, checksum_status::unknown);
    EXPECT_TRUE(checksums_hold(bytes_of(got[0].frame)));
  }
  {
    // With faults, every frame is summed: a corrupted one is caught.
    auto got = cross_offloaded(
        {.offloads = {.rx_checksum_verified = true, .tx_checksum = true}, .faults = {.corrupt = 1.0, .seed = 3}},
        sent, 0);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].checksum, checksum_status::unknown);
    EXPECT_FALSE(checksums_hold(bytes_of(got[0].frame)));
  }
}

TEST(virtual_link, tso_cuts_a_long_segment_as_a_nic_does) {
  // 2500 bytes in pieces of 1000: 1000, 1000, 500.
  const auto sent = tcp_frame(0xfffffc00, 2500);  // (the sequence numbers wrap)
  virtual_link_stats stats;
  auto got = cross_offloaded({.offloads = {.tx_checksum = true, .tso = true}}, sent, 1000, &stats);
  ASSERT_EQ(got.size(), 3u);
  std::vector<std::uint8_t> data;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto f = bytes_of(got[i].frame);
    const std::size_t size = i < 2 ? 1000 : 500;
    ASSERT_EQ(f.size(), tcp_at + tcp_header_size + size) << "piece " << i;
    EXPECT_TRUE(checksums_hold(f)) << "piece " << i;
    EXPECT_EQ(wire::get16(f, ethernet_header::size + 4), 100 + i);  // its own IPv4 id
    EXPECT_EQ(wire::get32(f, tcp_at + 4), static_cast<std::uint32_t>(0xfffffc00u + 1000 * i));
    const std::uint8_t flags = f[tcp_at + 13];
    EXPECT_EQ((flags & 0x80) != 0, i == 0) << "CWR on the first piece only";
    EXPECT_EQ((flags & 0x09) != 0, i == 2) << "PSH and FIN on the last piece only";
    EXPECT_EQ((flags & 0x09) == 0x09, i == 2);
    EXPECT_TRUE(flags & 0x10);
    // The options, on every piece.
    EXPECT_TRUE(std::equal(f.begin() + tcp_at + 20, f.begin() + tcp_at + 32, sent.begin() + tcp_at + 20));
    data.insert(data.end(), f.begin() + tcp_at + tcp_header_size, f.end());
  }
  EXPECT_TRUE(std::equal(data.begin(), data.end(), sent.begin() + tcp_at + tcp_header_size, sent.end()));
  EXPECT_EQ(stats.too_long, 0u);
}

TEST(virtual_link, with_lro_a_long_segment_crosses_whole_unless_faults_cut_it) {
  const auto sent = tcp_frame(1, 9000);  // longer than the MTU
  {
    auto got = cross_offloaded(
        {.offloads = {.rx_checksum_verified = true, .tx_checksum = true, .tso = true, .lro = true}}, sent, 1448);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].checksum, checksum_status::good);
    EXPECT_EQ(bytes_of(got[0].frame), sent);
  }
  {
    // The receiver does not check: the whole segment comes summed.
    auto got = cross_offloaded({.offloads = {.tx_checksum = true, .tso = true, .lro = true}}, sent, 1448);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].checksum, checksum_status::unknown);
    EXPECT_TRUE(checksums_hold(bytes_of(got[0].frame)));
  }
  {
    // Faults act on what a wire carries: the pieces (each twice here).
    auto got = cross_offloaded(
        {.offloads = {.rx_checksum_verified = true, .tx_checksum = true, .tso = true, .lro = true},
         .faults = {.duplicate = 1.0}},
        sent, 1448);
    ASSERT_EQ(got.size(), 2u * 7);  // 9000 = 6 x 1448 + 312
    for (auto& g : got) {
      EXPECT_EQ(g.checksum, checksum_status::unknown);
      EXPECT_TRUE(checksums_hold(bytes_of(g.frame)));
    }
  }
  {
    // A frame past the MTU that no TSO asked to cut is too long.
    virtual_link_stats stats;
    EXPECT_TRUE(
        cross_offloaded({.offloads = {.tx_checksum = true, .tso = true, .lro = true}}, sent, 0, &stats).empty());
    EXPECT_EQ(stats.too_long, 1u);
  }
}

TEST(virtual_link, delayed_and_rate_limited_frames_arrive_when_due) {
  {
    virtual_link link({.faults = {.delay = std::chrono::milliseconds(200)}});
    auto tx = link.end(0).open_queue(0);
    auto rx = link.end(1).open_queue(0);
    int notified = 0;
    rx->on_arrival([&] { ++notified; });
    EXPECT_TRUE(receive_all(*rx).empty());
    send(*tx, udp_frame(1, 1));
    EXPECT_TRUE(receive_all(*rx).empty()) << "received before its delay";
    EXPECT_GT(notified, 0) << "the receiver is told to keep polling";
    std::vector<received_frame> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      got = receive_all(*rx);
    }
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(bytes_of(got[0].frame), udp_frame(1, 1));
  }
  {
    // 100 frames of 1042 bytes at 100 kB/s: a second from first to last.
    virtual_link link({.faults = {.rate_bytes_per_second = 100'000}});
    auto tx = link.end(0).open_queue(0);
    auto rx = link.end(1).open_queue(0);
    for (std::uint32_t i = 0; i < 100; ++i) send(*tx, udp_frame(1, i, 1000));
    const auto at_once = receive_all(*rx).size();
    EXPECT_LE(at_once, 10u) << "the rate lets about one frame in 10 ms through";
    std::size_t total = at_once;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (total < 100 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      total += receive_all(*rx).size();
    }
    EXPECT_EQ(total, 100u) << "every frame arrives in the end";
  }
}

// Three ends on one segment: a frame for one end's MAC reaches that end
// alone; a broadcast, or a MAC nobody has, every other end. Ends may have
// different queue counts.
TEST(virtual_link, more_than_two_ends_switch_by_mac_and_may_differ_in_queues) {
  virtual_link link({.ends = 3, .queues_per_end = {1, 1, 4}});
  EXPECT_EQ(link.end(2).info().queues, 4u);
  EXPECT_EQ(link.end(2).info().mac, *ethernet_address::parse("02:00:00:00:00:03"));
  auto q0 = link.end(0).open_queue(0);
  auto q1 = link.end(1).open_queue(0);
  std::vector<std::unique_ptr<device_queue>> q2;
  for (unsigned i = 0; i < 4; ++i) q2.push_back(link.end(2).open_queue(i));
  auto received_at_2 = [&] {
    std::size_t n = 0;
    for (auto& q : q2) n += receive_all(*q).size();
    return n;
  };
  auto frame = udp_frame(1, 1);  // to 02:00:00:00:00:02
  send(*q0, frame);
  EXPECT_EQ(receive_all(*q1).size(), 1u);
  EXPECT_EQ(received_at_2(), 0u);
  std::copy_n(ethernet_address::parse("02:00:00:00:00:03")->bytes.begin(), 6, frame.begin());
  for (std::uint16_t port = 1; port <= 64; ++port) {
    auto f = udp_frame(port, port);
    std::copy_n(frame.begin(), 6, f.begin());
    send(*q0, f);
  }
  EXPECT_EQ(receive_all(*q1).size(), 0u);
  std::size_t used_queues = 0;
  for (auto& q : q2) used_queues += receive_all(*q).empty() ? 0 : 1;
  EXPECT_GT(used_queues, 1u) << "end 2's four queues share its flows";
  for (const char* to : {"ff:ff:ff:ff:ff:ff", "02:00:00:00:00:09"}) {
    std::copy_n(ethernet_address::parse(to)->bytes.begin(), 6, frame.begin());
    send(*q1, frame);
    EXPECT_EQ(receive_all(*q0).size(), 1u) << to;
    EXPECT_EQ(received_at_2(), 1u) << to;
    EXPECT_EQ(receive_all(*q1).size(), 0u) << "not back to the sender";
  }
}

TEST(virtual_link, the_pcap_file_reads_back_with_tcpdump) {
  const std::string path = ::testing::TempDir() + "/virtual_link_" + std::to_string(::getpid()) + ".pcap";
  {
    virtual_link link({.pcap_path = path});
    auto q0 = link.end(0).open_queue(0);
    auto q1 = link.end(1).open_queue(0);
    for (std::uint16_t port = 5000; port < 5003; ++port) send(*q0, udp_frame(port, port));
    EXPECT_EQ(receive_all(*q1).size(), 3u);
  }
  std::FILE* p = ::popen(("tcpdump -nn -r " + path + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int status = ::pclose(p);
  ASSERT_EQ(status, 0) << "tcpdump -r failed (tools/bazel installs tcpdump):\n" << out;
  for (const char* expected : {"10.0.0.1.5000 > 10.0.0.2.9: UDP, length 4", "10.0.0.1.5001 > 10.0.0.2.9",
                               "10.0.0.1.5002 > 10.0.0.2.9"}) {
    EXPECT_NE(out.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << out;
  }
  std::filesystem::remove(path);
}

TEST(virtual_link, two_threads_drive_the_two_ends) {
  // Room for every frame: however the threads are scheduled, none is
  // dropped for a full queue.
  virtual_link link({.queues = 2, .queue_frames_max = 4096});
  constexpr int frames = 2000;
  std::size_t received[2] = {0, 0};
  std::thread threads[2];
  for (unsigned side = 0; side < 2; ++side) {
    threads[side] = std::thread([&, side] {
      auto a = link.end(side).open_queue(0);
      auto b = link.end(side).open_queue(1);
      std::vector<received_frame> got;
      for (int i = 0; i < frames; ++i) {
        send(*a, udp_frame(static_cast<std::uint16_t>(3000 + i % 50), static_cast<std::uint32_t>(i)));
        a->receive(got, 8);
        b->receive(got, 8);
      }
      // The other thread may still be sending (a loaded machine): up to
      // 20 s for its frames, then the count below says what is missing.
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (got.size() < frames && std::chrono::steady_clock::now() < give_up) {
        if (a->receive(got, 64) + b->receive(got, 64) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      received[side] = got.size();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(received[0], std::size_t{frames});
  EXPECT_EQ(received[1], std::size_t{frames});
}

}  // namespace
}  // namespace reef::tcpip
