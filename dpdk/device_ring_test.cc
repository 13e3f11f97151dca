// Two native stacks in one process over two DPDK net_ring ports back to
// back (each port's transmit rings are the other's receive rings): UDP
// datagrams and TCP streams cross byte-exact, on one shard and on two
// (a queue pair per shard). EAL starts once for the binary, without
// hugepages.
#include <gtest/gtest.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "dpdk/device.h"
#include "dpdk/eal.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"
#include "tcpip/checksum.h"
#include "tcpip/native_stack.h"
#include "tcpip/testing/servers.h"

namespace reef::dpdk {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t a_ip = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t b_ip = 0x0a000002;
constexpr unsigned ring_queues = 2;
constexpr auto& at = tcpip::ipv4_socket_address;

// The two ports, made once (a port cannot be made twice in a process),
// and the rings from A to B (port B's receive queues).
std::uint16_t port_a = 0;
std::uint16_t port_b = 0;
std::vector<rte_ring*> a_to_b;

class ring_ports : public ::testing::Environment {
 public:
  void SetUp() override {
    start_eal({.args = split_eal_args("--no-huge -m 512 --no-pci --no-telemetry --log-level=lib.eal:warning")});
    std::vector<rte_ring*> b_to_a;
    for (unsigned q = 0; q < ring_queues; ++q) {
      const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;  // queue q: shard q alone
      a_to_b.push_back(::rte_ring_create(("ab" + std::to_string(q)).c_str(), 2048, SOCKET_ID_ANY, flags));
      b_to_a.push_back(::rte_ring_create(("ba" + std::to_string(q)).c_str(), 2048, SOCKET_ID_ANY, flags));
      ASSERT_NE(a_to_b.back(), nullptr);
      ASSERT_NE(b_to_a.back(), nullptr);
    }
    const int a = ::rte_eth_from_rings("ring_a", b_to_a.data(), ring_queues, a_to_b.data(), ring_queues, SOCKET_ID_ANY);
    const int b = ::rte_eth_from_rings("ring_b", a_to_b.data(), ring_queues, b_to_a.data(), ring_queues, SOCKET_ID_ANY);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    port_a = static_cast<std::uint16_t>(a);
    port_b = static_cast<std::uint16_t>(b);
  }
  void TearDown() override { stop_eal(); }
};

[[maybe_unused]] ::testing::Environment* const ports = ::testing::AddGlobalTestEnvironment(new ring_ports);

smp_options shards(unsigned n) { return reef::testing::one_or_two_shards(n); }

tcpip::native_stack_options options_for(std::uint32_t ip) {
  tcpip::native_stack_options o;
  o.ip.address = ip;
  o.ip.netmask = 0xffffff00;
  o.ip.tick = 5ms;
  o.ip.arp.first_retry = 200ms;
  return o;
}

// FNV-1a: a sum that changes with any byte moved, lost or changed.
std::uint64_t fnv(std::uint64_t h, const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}
constexpr std::uint64_t fnv_start = 0xcbf29ce484222325ull;

// B's servers on every shard: UDP port 7 echoes each datagram; TCP port
// 80 reads a stream to its end and answers with its length and sum.
thread_local tcpip::testing::udp_server udp_echo;
thread_local tcpip::testing::tcp_server tcp_sums;

std::string echo(const udp_datagram& d) { return std::string(d.data.get(), d.data.size()); }

future<> serve_tcp_connection(accept_result a) {
  auto in = a.connection.input();
  auto out = a.connection.output();
  std::uint64_t sum = fnv_start;
  std::size_t length = 0;
  for (;;) {
    temporary_buffer<char> b = co_await in.read();
    if (b.empty()) break;
    sum = fnv(sum, b.get(), b.size());
    length += b.size();
  }
  co_await out.write(std::to_string(length) + ":" + std::to_string(sum));
  co_await out.close();
}

// This shard's servers closed, and their loops ended.
future<> stop_servers() {
  co_await udp_echo.stop();
  co_await tcp_sums.stop();
}

struct results {
  std::atomic<int> datagrams_echoed{0};
  std::atomic<int> datagrams_wrong{0};
  std::atomic<int> streams_answered{0};
  std::atomic<int> streams_wrong{0};
};

// From every shard of A: `datagrams` numbered datagrams to B:7, each
// answered by itself (sent one at a time: a lost one fails the test).
future<> udp_client(tcpip::native_network& a, int datagrams, results& r) {
  udp_channel c = a.local().make_udp_channel(at(0, 0));
  for (int i = 0; i < datagrams; ++i) {
    std::string text = "datagram " + std::to_string(i) + " from shard " + std::to_string(this_shard_id()) + " ";
    text.append(static_cast<std::size_t>(i * 13 % 1400), static_cast<char>('a' + i % 26));
    co_await c.send(at(b_ip, 7), text);
    udp_datagram d = co_await c.receive();
    if (std::string_view(d.data.get(), d.data.size()) == text) {
      ++r.datagrams_echoed;
    } else {
      ++r.datagrams_wrong;
    }
  }
  c.close();
}

// A stream of `bytes` pseudo-random bytes to B:80, written in pieces of
// varied sizes; the answer must name its length and sum.
future<> tcp_client(tcpip::native_network& a, std::size_t bytes, unsigned seed, results& r) {
  connected_socket c = co_await a.local().connect(at(b_ip, 80), {});
  auto out = c.output();
  auto in = c.input();
  std::uint64_t sum = fnv_start;
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  std::size_t sent = 0;
  while (sent < bytes) {
    const std::size_t n = std::min<std::size_t>(bytes - sent, 1 + (x >> 40) % 65536);
    std::string piece(n, '\0');
    for (char& ch : piece) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      ch = static_cast<char>(x);
    }
    sum = fnv(sum, piece.data(), piece.size());
    co_await out.write(piece);
    sent += n;
  }
  co_await out.close();
  std::string reply;
  for (;;) {
    temporary_buffer<char> b = co_await in.read();
    if (b.empty()) break;
    reply.append(b.get(), b.size());
  }
  ++r.streams_answered;
  if (reply != std::to_string(bytes) + ":" + std::to_string(sum)) ++r.streams_wrong;
}

struct ring_run {
  unsigned shards = 1;
  unsigned queues = 1;  // per port
  std::optional<std::uint16_t> mtu;
  int datagrams = 200;
  int streams = 2;
  std::size_t bytes = 8 << 20;
};

void run_both(const ring_run& run) {
  const unsigned shard_count = run.shards;
  const int datagrams = run.datagrams;
  const int streams = run.streams;
  const std::size_t bytes = run.bytes;
  dpdk_device a_port({.port = port_a, .queues = run.queues, .mtu = run.mtu, .link_wait = 1000ms});
  dpdk_device b_port({.port = port_b, .queues = run.queues, .mtu = run.mtu, .link_wait = 1000ms});
  ASSERT_EQ(a_port.info().queues, run.queues);
  if (run.mtu) {
    ASSERT_EQ(a_port.info().mtu, *run.mtu);
  }
  EXPECT_EQ(a_port.driver(), "net_ring");
  EXPECT_FALSE(a_port.zero_copy_tx()) << "net_ring hands mbufs to another port: copies";
  results r;
  const int code = smp::run(shards(shard_count), [&]() -> future<int> {
    tcpip::native_network a(a_port, options_for(a_ip));
    tcpip::native_network b(b_port, options_for(b_ip));
    co_await a.start();
    co_await b.start();
    co_await smp::invoke_on_all([&b] {
      udp_echo.start(b.local().make_udp_channel(at(0, 7)), echo);
      tcp_sums.start(b.local().listen(at(0, 80), {}), serve_tcp_connection);
    });
    co_await smp::invoke_on_all([&]() -> future<> {
      std::vector<future<>> clients;
      clients.push_back(udp_client(a, datagrams, r));
      for (int i = 0; i < streams; ++i) {
        clients.push_back(tcp_client(a, bytes, this_shard_id() * 100 + static_cast<unsigned>(i), r));
      }
      for (auto& f : clients) {
        try {
          co_await std::move(f);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "a client failed: " << e.what();
        }
      }
    });
    co_await smp::invoke_on_all(stop_servers);
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  const int n = static_cast<int>(shard_count);
  EXPECT_EQ(r.datagrams_echoed.load(), n * datagrams);
  EXPECT_EQ(r.datagrams_wrong.load(), 0);
  EXPECT_EQ(r.streams_answered.load(), n * streams);
  EXPECT_EQ(r.streams_wrong.load(), 0) << "a stream's length or sum came back different";
  // Every frame either stack sent went through the ports.
  const port_stats s = a_port.stats();
  EXPECT_GT(s.tx_frames, 0u);
  EXPECT_GT(s.rx_frames, 0u);
  ASSERT_EQ(s.queues.size(), run.queues);
  for (unsigned q = 0; q < run.queues; ++q) EXPECT_GT(s.queues[q].tx_frames, 0u) << "queue " << q;
  // The driver's extended counts, by name, agree with the basic ones.
  bool found = false;
  for (const auto& [name, value] : a_port.extended_stats()) {
    if (name == "tx_good_packets") {
      found = true;
      EXPECT_EQ(value, s.tx_frames);
    }
  }
  EXPECT_TRUE(found) << "no tx_good_packets among the extended statistics";
}

TEST(dpdk_ring, one_shard_carries_udp_and_tcp_byte_exact) { run_both({}); }

TEST(dpdk_ring, two_shards_with_a_queue_pair_each_carry_udp_and_tcp_byte_exact) {
  run_both({.shards = 2, .queues = 2});
}

// Shard 1 has no queue: shard 0 forwards its flows' frames to it, and
// sends what it transmits.
TEST(dpdk_ring, two_shards_on_one_queue_pair_carry_udp_and_tcp_byte_exact) { run_both({.shards = 2, .queues = 1}); }

// Frames longer than an mbuf: sent as chains (copied, on net_ring),
// received as packets of several fragments, one per mbuf.
TEST(dpdk_ring, jumbo_frames_cross_as_chains_of_mbufs) { run_both({.mtu = 9000, .datagrams = 50}); }

// A frame of three mbufs from `pool`, as a NIC hands over a jumbo or LRO
// frame: a UDP datagram of `payload` from A's address and port 5555 to
// B's port 7, headers in the first mbuf, the payload split over two.
rte_mbuf* chain_of(rte_mempool* pool, const tcpip::device_info& a, const tcpip::device_info& b,
                   const std::string& payload) {
  std::string frame(14 + 20 + 8, '\0');
  auto put = [&frame](std::size_t at, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) frame[at + i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
  };
  std::copy(b.mac.bytes.begin(), b.mac.bytes.end(), frame.begin());
  std::copy(a.mac.bytes.begin(), a.mac.bytes.end(), frame.begin() + 6);
  put(12, 0x0800, 2);
  put(14, 0x4500, 2);
  put(16, 20 + 8 + static_cast<std::uint32_t>(payload.size()), 2);
  put(22, 0x4011, 2);  // TTL 64, UDP
  put(26, a_ip, 4);
  put(30, b_ip, 4);
  put(24, tcpip::internet_checksum(std::span(reinterpret_cast<const std::uint8_t*>(frame.data()) + 14, 20)), 2);
  put(34, 5555, 2);
  put(36, 7, 2);
  put(38, 8 + static_cast<std::uint32_t>(payload.size()), 2);  // (checksum 0: none)
  const std::string_view pieces[] = {frame, std::string_view(payload).substr(0, 400),
                                     std::string_view(payload).substr(400)};
  rte_mbuf* head = nullptr;
  rte_mbuf* tail = nullptr;
  for (std::string_view piece : pieces) {
    rte_mbuf* m = ::rte_pktmbuf_alloc(pool);
    if (m == nullptr) {
      ::rte_pktmbuf_free(head);
      return nullptr;
    }
    std::memcpy(::rte_pktmbuf_append(m, static_cast<std::uint16_t>(piece.size())), piece.data(), piece.size());
    if (head == nullptr) {
      head = m;
    } else {
      tail->next = m;
      ++head->nb_segs;
      head->pkt_len += m->data_len;
    }
    tail = m;
  }
  return head;
}

// On one shard: B echoes on port 7; A sends an ordinary datagram (B
// learns A's MAC), then the chain goes into B's receive ring and A's
// socket receives the echo.
future<int> chain_round_trip(dpdk_device& a_port, dpdk_device& b_port, rte_mbuf* chain, std::string& echoed) {
  tcpip::native_network a(a_port, options_for(a_ip));
  tcpip::native_network b(b_port, options_for(b_ip));
  co_await a.start();
  co_await b.start();
  udp_echo.start(b.local().make_udp_channel(at(0, 7)), echo);
  udp_channel c = a.local().make_udp_channel(at(0, 5555));
  co_await c.send(at(b_ip, 7), std::string_view("hello"));
  (void)co_await c.receive();
  EXPECT_EQ(::rte_ring_enqueue(a_to_b[0], chain), 0);
  udp_datagram d = co_await c.receive();
  echoed.assign(d.data.get(), d.data.size());
  c.close();
  co_await stop_servers();
  co_await a.stop();
  co_await b.stop();
  co_return 0;
}

// A frame received as a chain of mbufs is one packet of several
// fragments. The test puts the chain in port B's receive ring itself.
TEST(dpdk_ring, a_frame_received_as_a_chain_of_mbufs_is_one_packet) {
  dpdk_device a_port({.port = port_a, .link_wait = 0ms});
  dpdk_device b_port({.port = port_b, .link_wait = 0ms});
  // (The private area holds the received frame's deleter, as the
  // device's own pools do.)
  static rte_mempool* pool = ::rte_pktmbuf_pool_create("chain_test", 63, 0, 16, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  ASSERT_NE(pool, nullptr);
  std::string payload(1000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31 + 7);
  rte_mbuf* chain = chain_of(pool, a_port.info(), b_port.info(), payload);
  ASSERT_NE(chain, nullptr);
  ASSERT_EQ(chain->nb_segs, 3);
  std::string echoed;
  const int code = smp::run(shards(1), [&] { return chain_round_trip(a_port, b_port, chain, echoed); });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(echoed == payload) << "echoed " << echoed.size() << " bytes, not the 1000 sent";
  // Every mbuf of the chain came back to its pool.
  EXPECT_EQ(::rte_mempool_avail_count(pool), 63u);
}

TEST(dpdk_ring, a_port_past_the_last_is_refused_by_name) {
  try {
    dpdk_device d({.port = 77});
    ADD_FAILURE() << "port 77 opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("DPDK port 77: no such port"), std::string::npos) << e.what();
  }
}

TEST(dpdk_ring, a_queue_past_the_last_is_refused) {
  dpdk_device d({.port = port_a, .queues = 1, .link_wait = 0ms});
  EXPECT_THROW(d.open_queue(1), std::invalid_argument);
}

// An Ethernet + IPv4 + TCP/UDP frame's first bytes, for the RSS check.
std::vector<std::uint8_t> frame_of(std::uint8_t protocol, std::uint16_t fragment_field = 0) {
  std::vector<std::uint8_t> f(14 + 20 + 8, 0);
  f[12] = 0x08;  // IPv4
  f[14] = 0x45;
  f[14 + 6] = static_cast<std::uint8_t>(fragment_field >> 8);
  f[14 + 7] = static_cast<std::uint8_t>(fragment_field);
  f[14 + 9] = protocol;
  const std::uint32_t source = 0x420995bb, destination = 0xa18e6450;
  for (int i = 0; i < 4; ++i) {
    f[14 + 12 + i] = static_cast<std::uint8_t>(source >> (24 - 8 * i));
    f[14 + 16 + i] = static_cast<std::uint8_t>(destination >> (24 - 8 * i));
  }
  f[34] = 2794 >> 8;
  f[35] = 2794 & 0xff;
  f[36] = 1766 >> 8;
  f[37] = 1766 & 0xff;
  return f;
}

TEST(dpdk_rss, a_port_hash_is_checked_against_the_stack_s_on_tcp_and_udp_frames_alone) {
  const tcpip::toeplitz_hash h;
  // Microsoft's verification suite: 66.9.149.187:2794 -> 161.142.100.80:1766.
  constexpr std::uint32_t expected = 0x51ccc178;
  EXPECT_EQ(hash_agrees(frame_of(6), expected, h), std::optional<bool>(true));
  EXPECT_EQ(hash_agrees(frame_of(17), expected, h), std::optional<bool>(true));
  EXPECT_EQ(hash_agrees(frame_of(6), expected ^ 1, h), std::optional<bool>(false));
  // Not judged: ICMP, a fragment, a frame cut short, ARP.
  EXPECT_EQ(hash_agrees(frame_of(1), expected, h), std::nullopt);
  EXPECT_EQ(hash_agrees(frame_of(6, 0x2000), expected, h), std::nullopt);
  auto f = frame_of(6);
  EXPECT_EQ(hash_agrees(std::span(f).first(30), expected, h), std::nullopt);
  f[12] = 0x08;
  f[13] = 0x06;
  EXPECT_EQ(hash_agrees(f, expected, h), std::nullopt);
}

TEST(dpdk_eal, a_second_start_is_refused) { EXPECT_THROW(start_eal({}), std::logic_error); }

TEST(dpdk_eal, arguments_split_as_a_shell_would_and_a_quote_left_open_is_refused) {
  EXPECT_EQ(split_eal_args("  --no-huge  -m 256 --vdev='net_tap0,iface=a b' \"x\"y "),
            (std::vector<std::string>{"--no-huge", "-m", "256", "--vdev=net_tap0,iface=a b", "xy"}));
  EXPECT_EQ(split_eal_args(""), std::vector<std::string>{});
  EXPECT_THROW(split_eal_args("--vdev='net_tap0"), std::invalid_argument);
}

TEST(dpdk_eal, defaults_name_the_shards_cpus_and_a_file_prefix_of_the_process_own) {
  auto args = eal_arguments({.args = {"--no-huge"}, .cpus = {2, 3}});
  EXPECT_EQ(args[0], "--no-huge");
  EXPECT_EQ(args[1], "--lcores=0@(2,3)");
  EXPECT_EQ(args[2].rfind("--file-prefix=reef-", 0), 0u);
  // The user's own choices stand.
  args = eal_arguments({.args = {"-l", "1", "--file-prefix", "mine"}, .cpus = {2}, .hugepages = "/mnt/huge"});
  EXPECT_EQ(args, (std::vector<std::string>{"-l", "1", "--file-prefix", "mine", "--huge-dir=/mnt/huge"}));
}

}  // namespace
}  // namespace reef::dpdk
