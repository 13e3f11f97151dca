// Two native stacks over the virtual link, on one shard and on two: UDP
// request and response; many flows spread over the shards, each served
// on the shard its flow names (with a device queue per shard, with one
// queue for two shards so that frames are forwarded, and with a device
// whose hash disagrees with the stack's); 10% loss, duplication and
// reordering; the bound on frames in flight between shards. TCP
// connections from every shard, each served on the shard its 4-tuple
// steers to. Runs on both reactor backends.
#include "tcpip/native_stack.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/gate.h"
#include "core/metrics.h"
#include "core/sleep.h"
#include "core/when_all.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"
#include "tcpip/testing/servers.h"
#include "tcpip/virtual_link.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t a_ip = 0x0a000001;
constexpr std::uint32_t b_ip = 0x0a000002;

constexpr auto& at = ipv4_socket_address;

std::string text_of(const udp_datagram& d) { return std::string(d.data.get(), d.data.size()); }

native_stack_options options_for(std::uint32_t ip, std::size_t in_flight_max = 2048) {
  native_stack_options o;
  o.ip.address = ip;
  o.ip.netmask = 0xffffff00;
  o.ip.tick = 5ms;
  o.ip.arp.first_retry = 200ms;
  o.in_flight_max = in_flight_max;
  return o;
}

smp_options shards(unsigned n) { return reef::testing::one_or_two_shards(n); }

// On every shard of B: a UDP server on port 7 that answers each datagram
// with the number of the shard that served it.
thread_local testing::udp_server server;

std::string shard_and_text(const udp_datagram& d) { return std::to_string(this_shard_id()) + ":" + text_of(d); }

future<> start_servers(native_network& b) {
  return smp::invoke_on_all([&b] {
    server.start(b.local().make_udp_channel(at(0, 7)), shard_and_text);
  });
}

future<> stop_servers() {
  return smp::invoke_on_all([] { return server.stop(); });
}

struct flows_result {
  std::atomic<int> answered{0};
  std::atomic<int> lost{0};
  std::atomic<int> misplaced{0};  // served on a shard other than the one the flow names
};

// From every shard of A: `flows` sockets, each sending `rounds` numbered
// datagrams to B:7 and collecting the answers until all came or `wait`
// passed.
future<> run_flows(native_network& a, native_network& b, int flows, int rounds, std::chrono::milliseconds wait,
                   flows_result& r) {
  return smp::invoke_on_all([&a, &b, flows, rounds, wait, &r]() -> future<> {
    struct client {
      udp_channel channel;
      std::set<int> answered;
      std::string expected;  // the shard B should serve it on
      std::optional<future<>> receiving;
    };
    std::vector<client> clients(flows);
    for (auto& c : clients) {
      c.channel = a.local().make_udp_channel(at(0, 0));
      const std::uint16_t port = c.channel.local_address().port();
      EXPECT_TRUE(a.steering().ephemeral_port_of(this_shard_id(), port)) << port;
      c.expected = std::to_string(b.steering().shard_of_datagram(17, a_ip, b_ip, port, 7));
      c.receiving = [](client& c, flows_result& r) -> future<> {
        for (;;) {
          udp_datagram d;
          try {
            d = co_await c.channel.receive();
          } catch (const std::system_error&) {
            co_return;  // closed
          }
          const std::string text = text_of(d);
          const auto colon = text.find(':');
          if (colon == std::string::npos || text.substr(0, colon) != c.expected) ++r.misplaced;
          if (colon != std::string::npos) c.answered.insert(std::stoi(text.substr(colon + 1)));
        }
      }(c, r);
    }
    for (int k = 0; k < rounds; ++k) {
      for (auto& c : clients) co_await c.channel.send(at(b_ip, 7), std::to_string(k));
    }
    const auto deadline = lowres_clock::now() + wait;
    auto all_answered = [&] {
      for (auto& c : clients) {
        if (c.answered.size() < static_cast<std::size_t>(rounds)) return false;
      }
      return true;
    };
    while (!all_answered() && lowres_clock::now() < deadline) co_await sleep(1ms);
    for (auto& c : clients) {
      c.channel.close();
      co_await std::move(*c.receiving);
      r.answered += static_cast<int>(c.answered.size());
      r.lost += rounds - static_cast<int>(c.answered.size());
    }
  });
}

// Sums a count over the shards of `net`.
template <typename F>
future<std::uint64_t> total(native_network& net, F f) {
  return smp::map_reduce([&net, f] { return std::uint64_t{f(net.local().stats())}; }, std::uint64_t{0},
                         std::plus<std::uint64_t>());
}

void run_spread(unsigned shard_count, virtual_link_options link_options, int flows) {
  flows_result r;
  std::uint64_t forwarded = 0;
  const int code = smp::run(shards(shard_count), [&]() -> future<int> {
    virtual_link link(link_options);
    native_network a(link.end(0), options_for(a_ip));
    native_network b(link.end(1), options_for(b_ip));
    co_await a.start();
    co_await b.start();
    co_await start_servers(b);
    co_await run_flows(a, b, flows, 2, 5s, r);
    forwarded = co_await total(b, [](const native_stack_stats& s) { return s.forwarded; });
    co_await stop_servers();
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(r.answered.load(), static_cast<int>(shard_count) * flows * 2);
  EXPECT_EQ(r.lost.load(), 0);
  EXPECT_EQ(r.misplaced.load(), 0);
  if (shard_count == 2 && link_options.queues == 1) EXPECT_GT(forwarded, 0u) << "one queue for two shards";
  if (shard_count == 2 && link_options.queues == 2 && !link_options.advertised_rss_key) {
    EXPECT_EQ(forwarded, 0u) << "the device steers each flow to its own shard";
  }
}

TEST(native_stack, one_shard_each_answers_udp) { run_spread(1, {}, 4); }

// Shards' counts add up to the stack's: every layer, and the device
// queues of the shards that have one.
TEST(native_stack, stats_add_up_over_shards) {
  native_stack_stats a, b;
  a.ip.rx_frames = 3;
  a.ip.icmp_errors_dropped = 1;
  a.udp.received = 2;
  a.forwarded = 5;
  b.ip.rx_frames = 4;
  b.udp.icmp_errors = 6;
  b.forward_dropped = 7;
  b.queue = device_queue_stats{};
  a += b;
  EXPECT_EQ(a.ip.rx_frames, 7u);
  EXPECT_EQ(a.ip.icmp_errors_dropped, 1u);
  EXPECT_EQ(a.udp.received, 2u);
  EXPECT_EQ(a.udp.icmp_errors, 6u);
  EXPECT_EQ(a.forwarded, 5u);
  EXPECT_EQ(a.forward_dropped, 7u);
  ASSERT_TRUE(a.queue.has_value()) << "b drives a queue";
  EXPECT_EQ(a.queue->rx_frames, 0u);
  native_stack_stats with_queue;
  with_queue.queue = device_queue_stats{};
  with_queue.queue->rx_frames = 9;
  a += with_queue;
  a += with_queue;
  ASSERT_TRUE(a.queue.has_value());
  EXPECT_EQ(a.queue->rx_frames, 18u);
}

TEST(native_stack, two_shards_with_a_queue_each_serve_each_flow_where_its_hash_says) {
  run_spread(2, {.queues = 2}, 24);
}

TEST(native_stack, two_shards_on_one_queue_forward_to_the_flow_s_shard) { run_spread(2, {.queues = 1}, 24); }

TEST(native_stack, a_device_whose_hash_disagrees_still_delivers_each_flow_to_its_shard) {
  virtual_link_options o{.queues = 2};
  o.rss_key[0] ^= 0xff;  // the link hashes with this; it says it uses the default
  o.advertised_rss_key = default_toeplitz_key;
  run_spread(2, o, 24);
}

TEST(native_stack, loss_duplication_and_reordering_show_as_loss_and_nothing_else) {
  for (unsigned n : {1u, 2u}) {
    flows_result r;
    std::uint64_t lost_on_link = 0;
    const int code = smp::run(shards(n), [&]() -> future<int> {
      virtual_link link({.queues = 1, .faults = {.loss = 0.1, .duplicate = 0.1, .reorder = 0.1, .seed = 42}});
      native_network a(link.end(0), options_for(a_ip));
      native_network b(link.end(1), options_for(b_ip));
      co_await a.start();
      co_await b.start();
      co_await start_servers(b);
      co_await run_flows(a, b, 4, 25, 500ms, r);
      lost_on_link = link.stats().lost;
      co_await stop_servers();
      co_await a.stop();
      co_await b.stop();
      co_return 0;
    });
    EXPECT_EQ(code, 0);
    const int sent = static_cast<int>(n) * 4 * 25;
    EXPECT_EQ(r.answered + r.lost, sent);
    EXPECT_GT(r.lost.load(), 0) << "10% loss each way";
    EXPECT_GT(r.answered.load(), sent / 2);
    EXPECT_GT(lost_on_link, 0u);
    EXPECT_EQ(r.misplaced.load(), 0);
  }
}

// With room for one frame in flight between shards, a burst for shard 1
// arriving on shard 0's queue is mostly dropped: every datagram is
// either received or counted as dropped.
TEST(native_stack, past_the_in_flight_bound_forwarded_frames_are_dropped_and_counted) {
  std::uint64_t received = 0, dropped = 0, sent = 0;
  const int code = smp::run(shards(2), [&]() -> future<int> {
    virtual_link link({.queues = 1});
    native_network a(link.end(0), options_for(a_ip));
    native_network b(link.end(1), options_for(b_ip, 1));
    co_await a.start();
    co_await b.start();
    co_await start_servers(b);
    // Learn each other's addresses first (one exchange from shard 0).
    flows_result warm;
    co_await run_flows(a, b, 1, 1, 1s, warm);
    auto dropped_count = [&b] { return total(b, [](const native_stack_stats& s) { return s.forward_dropped; }); };
    const std::uint64_t dropped_before = co_await dropped_count();
    const std::uint16_t port = 9000;  // not ephemeral: B steers by hash
    auto c = a.local().make_udp_channel(at(0, port));
    for (std::uint16_t dport = 1000; sent < 200 && dport < 5000; ++dport) {
      if (b.steering().shard_of_datagram(17, a_ip, b_ip, port, dport) != 1) continue;
      co_await c.send(at(b_ip, dport), "burst");
      ++sent;
    }
    co_await sleep(200ms);
    received = co_await total(b, [](const native_stack_stats& s) { return s.udp.no_port; });
    dropped = co_await dropped_count() - dropped_before;
    c.close();
    co_await stop_servers();
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(sent, 200u);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(received + dropped, sent) << received << " reached shard 1, " << dropped << " dropped";
}

// On every shard of B: a TCP server on port 80 that reads a request to
// its end and answers with the serving shard's number and the bytes'
// sum.
thread_local testing::tcp_server tcp_server;

future<> serve_tcp_connection(accept_result a) {
  auto in = a.connection.input();
  auto out = a.connection.output();
  std::uint64_t sum = 0;
  for (;;) {
    temporary_buffer<char> b = co_await in.read();
    if (b.empty()) break;
    for (char c : b) sum += static_cast<unsigned char>(c);
  }
  co_await out.write(std::to_string(this_shard_id()) + ":" + std::to_string(sum));
  co_await out.close();
}


void run_tcp_spread(unsigned shard_count, virtual_link_options link_options, int connections, std::size_t bytes) {
  std::atomic<int> answered{0}, misplaced{0}, wrong_sum{0}, port_elsewhere{0};
  const int code = smp::run(shards(shard_count), [&]() -> future<int> {
    virtual_link link(link_options);
    native_network a(link.end(0), options_for(a_ip));
    native_network b(link.end(1), options_for(b_ip));
    co_await a.start();
    co_await b.start();
    co_await smp::invoke_on_all([&b] {
      tcp_server.start(b.local().listen(at(0, 80), {}), serve_tcp_connection);
    });
    co_await smp::invoke_on_all([&]() -> future<> {
      std::vector<future<>> clients;
      for (int i = 0; i < connections; ++i) {
        clients.push_back([](native_network& a, native_network& b, std::size_t bytes, std::atomic<int>& answered,
                             std::atomic<int>& misplaced, std::atomic<int>& wrong_sum,
                             std::atomic<int>& port_elsewhere) -> future<> {
          connected_socket c = co_await a.local().connect(at(b_ip, 80), {});
          const std::uint16_t port = c.local_address().port();
          if (a.steering().shard_of_datagram(6, b_ip, a_ip, 80, port) != this_shard_id()) ++port_elsewhere;
          const unsigned expected = b.steering().shard_of_datagram(6, a_ip, b_ip, port, 80);
          auto out = c.output();
          auto in = c.input();
          std::uint64_t sum = 0;
          std::string data(bytes, ' ');
          for (std::size_t k = 0; k < bytes; ++k) {
            data[k] = static_cast<char>(k * 7 + port);
            sum += static_cast<unsigned char>(data[k]);
          }
          co_await out.write(data);
          co_await out.close();
          std::string reply;
          for (;;) {
            temporary_buffer<char> r = co_await in.read();
            if (r.empty()) break;
            reply.append(r.get(), r.size());
          }
          ++answered;
          if (reply != std::to_string(expected) + ":" + std::to_string(sum)) {
            if (reply.substr(0, reply.find(':')) != std::to_string(expected)) {
              ++misplaced;
            } else {
              ++wrong_sum;
            }
          }
        }(a, b, bytes, answered, misplaced, wrong_sum, port_elsewhere));
      }
      for (auto& f : clients) co_await std::move(f);
    });
    co_await smp::invoke_on_all([] {
      // Each shard has both stacks' metrics, and its segments counted.
      for (const char* stack : {"native", "native-2"}) {
        EXPECT_TRUE(metrics::is_registered("net_native_tcp_segments_received_total", {{"stack", stack}})) << stack;
        EXPECT_TRUE(metrics::is_registered("net_native_tcp_dropped_total", {{"stack", stack}, {"reason", "bad_ack"}}));
      }
      double received = 0;
      for (const auto& f : metrics::read_all("net_native_tcp_segments_received_total")) {
        for (const auto& sample : f.samples) received += sample.value;
      }
      EXPECT_GT(received, 0) << "on shard " << this_shard_id();
    });
    co_await smp::invoke_on_all([] { return tcp_server.stop(); });
    co_await a.stop();
    co_await b.stop();
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(answered.load(), static_cast<int>(shard_count) * connections);
  EXPECT_EQ(misplaced.load(), 0) << "served on a shard other than the one its 4-tuple steers to";
  EXPECT_EQ(wrong_sum.load(), 0);
  EXPECT_EQ(port_elsewhere.load(), 0) << "connect() picked a port that steers to another shard";
}

TEST(native_stack, tcp_connections_from_one_shard) { run_tcp_spread(1, {}, 8, 200000); }

TEST(native_stack, tcp_connections_from_two_shards_with_a_queue_each) {
  run_tcp_spread(2, {.queues = 2}, 16, 200000);
}

TEST(native_stack, tcp_connections_from_two_shards_on_one_queue) { run_tcp_spread(2, {.queues = 1}, 16, 200000); }

TEST(native_stack, tcp_connections_over_loss_duplication_and_reordering) {
  run_tcp_spread(2, {.queues = 1, .faults = {.loss = 0.05, .duplicate = 0.05, .reorder = 0.05, .seed = 7}}, 8,
                 100000);
}

// A stops with a connection open on each shard: each is reset, the one
// on shard 1 (which has no queue: its resets go through shard 0, which is
// stopping too) as well as shard 0's. B's reads end at once.
std::atomic<int> connections_ended{0};

future<> read_to_the_end(accept_result a) {
  auto in = a.connection.input();
  try {
    while (!(co_await in.read()).empty()) {
    }
  } catch (const std::system_error&) {
    // reset
  }
  ++connections_ended;
}

thread_local std::optional<connected_socket> held_connection;

future<int> stop_with_connections_open(native_network& a, native_network& b) {
  co_await a.start();
  co_await b.start();
  co_await smp::invoke_on_all([&b] {
    tcp_server.start(b.local().listen(at(0, 80), {}), read_to_the_end);
  });
  co_await smp::invoke_on_all([&a]() -> future<> { held_connection = co_await a.local().connect(at(b_ip, 80), {}); });
  co_await a.stop_shards();
  for (int waited = 0; waited < 5000 && connections_ended.load() < static_cast<int>(smp::count); ++waited) {
    co_await sleep(1ms);
  }
  EXPECT_EQ(connections_ended.load(), static_cast<int>(smp::count)) << "a connection of A's was not reset";
  co_await smp::invoke_on_all([] { held_connection.reset(); });
  co_await smp::invoke_on_all([] { return tcp_server.stop(); });
  co_await a.stop();
  co_await b.stop();
  co_return 0;
}

TEST(native_stack, a_stopping_stack_resets_its_connections_on_every_shard_of_one_queue) {
  connections_ended = 0;
  const int code = smp::run(shards(2), []() -> future<int> {
    virtual_link link({.queues = 1});
    native_network a(link.end(0), options_for(a_ip));
    native_network b(link.end(1), options_for(b_ip));
    co_return co_await stop_with_connections_open(a, b);
  });
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace reef::tcpip
