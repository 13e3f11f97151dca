// The POSIX stack across two shards: both ways of sharing a port's
// connections. Runs on both reactor backends (the flags on the command line
// choose the shards' backend).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/when_all.h"
#include "net/posix_stack.h"
#include "net/stack.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"

namespace reef {
namespace {

using reef::testing::two_shards;

// A port nobody uses right now.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  ::close(fd);
  return ntohs(sin.sin_port);
}

// Per shard: its listener and how many connections it accepted.
thread_local server_socket shard_listener;
std::atomic<int> accepted_on[2];

// Accepts `n` connections on this shard's listener in the background,
// each read to its end.
future<> accept_until_aborted() {
  for (;;) {
    accept_result a;
    try {
      a = co_await shard_listener.accept();
    } catch (const std::system_error&) {
      co_return;  // aborted
    }
    accepted_on[this_shard_id()]++;
    auto in = a.connection.input();
    while (!(co_await in.read()).empty()) {
    }
  }
}

// Runs on two shards: listen everywhere, connect `n` times from shard 0,
// and return how many each shard accepted.
void run_balancing(load_balancing balancing, int n, int expect_on_each) {
  accepted_on[0] = 0;
  accepted_on[1] = 0;
  std::uint16_t port = free_port();
  auto address = socket_address(inet_address::parse("127.0.0.1"), port);
  int code = smp::run(two_shards(), [&]() -> future<int> {
    std::vector<future<>> loops;
    co_await smp::invoke_on_all([&] {
      listen_options options;
      options.balancing = balancing;
      shard_listener = listen(address, options);
    });
    auto loop0 = accept_until_aborted();
    auto loop1 = smp::submit_to(1, [] { (void)accept_until_aborted(); });
    co_await std::move(loop1);
    for (int i = 0; i < n; ++i) {
      auto s = co_await connect(address);
      auto out = s.output();
      co_await out.write("x");
      co_await out.close();
    }
    // Every connection is accepted somewhere.
    while (accepted_on[0] + accepted_on[1] < n) co_await yield();
    co_await smp::invoke_on_all([] {
      shard_listener.abort_accept();
    });
    co_await std::move(loop0);
    co_await smp::invoke_on_all([] { shard_listener = server_socket(); });
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(accepted_on[0] + accepted_on[1], n);
  if (expect_on_each >= 0) {
    EXPECT_EQ(accepted_on[0], expect_on_each);
    EXPECT_EQ(accepted_on[1], expect_on_each);
  }
}

TEST(posix_stack_smp, reuse_port_lets_every_shard_listen_on_the_port) {
  // The kernel picks by hash: only the total is certain.
  run_balancing(load_balancing::kernel, 40, -1);
}

TEST(posix_stack_smp, round_robin_hands_connections_to_the_shards_in_turn) {
  run_balancing(load_balancing::round_robin, 40, 20);
}

// Per shard: a round-robin listener per address family on one port, and
// what each accepted (by the family of its local address).
thread_local server_socket v4_listener;
thread_local server_socket v6_listener;
std::atomic<int> v4_accepted{0}, v6_accepted{0}, wrong_family{0};

future<> accept_family(server_socket& listener, bool v6) {
  for (;;) {
    accept_result a;
    try {
      a = co_await listener.accept();
    } catch (const std::system_error&) {
      co_return;
    }
    if (a.connection.local_address().address().is_ipv4() == v6) ++wrong_family;
    ++(v6 ? v6_accepted : v4_accepted);
  }
}

// Round-robin groups are keyed by the whole address: an IPv4 and an IPv6
// listener on the same port hand out only their own connections. And
// close() waits for shard 0's accept loop.
TEST(posix_stack_smp, round_robin_groups_are_per_address_and_close_waits_for_the_loop) {
  v4_accepted = v6_accepted = wrong_family = 0;
  const std::uint16_t port = free_port();
  const auto v4 = socket_address(inet_address::parse("127.0.0.1"), port);
  const auto v6 = socket_address(inet_address::parse("::1"), port);
  int code = smp::run(two_shards(), [&]() -> future<int> {
    co_await smp::invoke_on_all([&] {
      listen_options options;
      options.balancing = load_balancing::round_robin;
      v4_listener = listen(v4, options);
      v6_listener = listen(v6, options);
      (void)accept_family(v4_listener, false);
      (void)accept_family(v6_listener, true);
    });
    for (int i = 0; i < 10; ++i) {
      for (const auto& target : {v4, v6}) {
        auto s = co_await connect(target);
        auto out = s.output();
        co_await out.close();
      }
    }
    while (v4_accepted + v6_accepted < 20) co_await yield();
    co_await smp::invoke_on_all([]() -> future<> {
      co_await v4_listener.close();
      co_await v6_listener.close();
      v4_listener = server_socket();
      v6_listener = server_socket();
    });
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(v4_accepted, 10);
  EXPECT_EQ(v6_accepted, 10);
  EXPECT_EQ(wrong_family, 0) << "a listener accepted a connection of the other address";
}

// A shard that listens anew on an address before dropping its old
// listener keeps its turn: the old one going does not take the new one out.
thread_local server_socket replaced_listener;
std::atomic<int> new_listener_accepted{0};

TEST(posix_stack_smp, replacing_a_round_robin_listener_keeps_the_shard_in_turn) {
  new_listener_accepted = 0;
  const auto address = socket_address(inet_address::parse("127.0.0.1"), free_port());
  int code = smp::run(two_shards(), [&]() -> future<int> {
    listen_options options;
    options.balancing = load_balancing::round_robin;
    co_await smp::invoke_on_all([&] { shard_listener = listen(address, options); });
    auto shard0_accepts = accept_until_aborted();  // shard 0's accepts start the loop
    co_await smp::submit_to(1, [&] {
      replaced_listener = listen(address, options);  // the new one, beside the old
      shard_listener = server_socket();              // the old one goes
      (void)[]() -> future<> {
        for (;;) {
          try {
            auto a = co_await replaced_listener.accept();
          } catch (const std::system_error&) {
            co_return;
          }
          ++new_listener_accepted;
        }
      }();
    });
    for (int i = 0; i < 10; ++i) {
      auto s = co_await connect(address);
      auto out = s.output();
      co_await out.close();
    }
    for (int i = 0; i < 1000 && new_listener_accepted < 5; ++i) co_await sleep(std::chrono::milliseconds(1));
    co_await smp::invoke_on_all([]() -> future<> {
      if (shard_listener) co_await shard_listener.close();
      if (replaced_listener) co_await replaced_listener.close();
      shard_listener = server_socket();
      replaced_listener = server_socket();
    });
    co_await std::move(shard0_accepts);
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(new_listener_accepted, 5) << "shard 1 got no turn after its old listener went";
}

TEST(posix_stack_smp, round_robin_needs_a_fixed_port) {
  int code = smp::run(two_shards(), []() -> future<int> {
    listen_options options;
    options.balancing = load_balancing::round_robin;
    try {
      listen(socket_address::parse("127.0.0.1:0"), options);
      ADD_FAILURE() << "round robin on port 0";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("port"), std::string::npos);
    }
    co_return 0;
  });
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace reef
