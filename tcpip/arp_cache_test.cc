// The ARP table: one request per address, waiters woken by what is
// learned, retries with back-off then host unreachable, entries that age
// out, and the bounds on entries and waiters.
#include "tcpip/arp_cache.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;
using time_point = arp_cache::time_point;

const time_point t0 = time_point(100s);
const ethernet_address mac_a = *ethernet_address::parse("02:00:00:00:00:0a");
const ethernet_address mac_b = *ethernet_address::parse("02:00:00:00:00:0b");

int error_of(future<ethernet_address>& f) {
  try {
    f.get();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

TEST(arp_cache, one_request_per_address_and_every_waiter_learns_the_answer) {
  std::vector<std::uint32_t> sent;
  arp_cache cache([&](std::uint32_t ip) { sent.push_back(ip); });
  auto first = cache.resolve(0x0a000001, t0);
  auto second = cache.resolve(0x0a000001, t0);
  EXPECT_EQ(sent, std::vector<std::uint32_t>{0x0a000001});
  EXPECT_FALSE(first.available());
  EXPECT_EQ(cache.waiting(), 2u);
  cache.learn(0x0a000001, mac_a, t0 + 1ms);
  ASSERT_TRUE(first.available());
  ASSERT_TRUE(second.available());
  EXPECT_EQ(first.get(), mac_a);
  EXPECT_EQ(second.get(), mac_a);
  EXPECT_EQ(cache.waiting(), 0u);
  EXPECT_EQ(cache.lookup(0x0a000001, t0 + 2ms), mac_a);
  // Known: at once, nothing sent.
  auto known = cache.resolve(0x0a000001, t0 + 3ms);
  ASSERT_TRUE(known.available());
  EXPECT_EQ(known.get(), mac_a);
  EXPECT_EQ(sent.size(), 1u);
  // A later reply moves the address.
  cache.learn(0x0a000001, mac_b, t0 + 4ms);
  EXPECT_EQ(cache.lookup(0x0a000001, t0 + 5ms), mac_b);
}

TEST(arp_cache, retries_back_off_then_fail_with_host_unreachable) {
  std::vector<time_point> sent_at;
  time_point now = t0;
  arp_cache cache([&](std::uint32_t) { sent_at.push_back(now); }, {.tries = 4, .first_retry = 250ms});
  auto f = cache.resolve(0x0a000009, now);
  for (auto step = 0ms; step <= 5000ms; step += 10ms) {
    now = t0 + step;
    cache.tick(now);
  }
  ASSERT_EQ(sent_at.size(), 4u);
  EXPECT_EQ(sent_at[1] - sent_at[0], 250ms);
  EXPECT_EQ(sent_at[2] - sent_at[1], 500ms);
  EXPECT_EQ(sent_at[3] - sent_at[2], 1000ms);
  ASSERT_TRUE(f.available());
  EXPECT_EQ(error_of(f), EHOSTUNREACH);
  EXPECT_EQ(cache.stats().unreachable, 1u);
  EXPECT_EQ(cache.waiting(), 0u);
  // A new resolution starts over.
  auto again = cache.resolve(0x0a000009, now);
  EXPECT_EQ(sent_at.size(), 5u);
  cache.learn(0x0a000009, mac_a, now);
  EXPECT_EQ(again.get(), mac_a);
}

TEST(arp_cache, entries_age_out_and_the_table_keeps_its_size) {
  int sent = 0;
  arp_cache cache([&](std::uint32_t) { ++sent; }, {.entries_max = 3, .entry_lifetime = 60s});
  cache.learn(1, mac_a, t0);
  EXPECT_EQ(cache.lookup(1, t0 + 59s), mac_a);
  EXPECT_EQ(cache.lookup(1, t0 + 60s), std::nullopt);
  auto f = cache.resolve(1, t0 + 60s);
  EXPECT_EQ(sent, 1) << "an aged entry is asked for again";
  EXPECT_FALSE(f.available());
  for (std::uint32_t ip = 1; ip <= 5; ++ip) cache.learn(ip, mac_b, t0 + 61s);
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.stats().evicted, 2u);
  EXPECT_EQ(cache.lookup(1, t0 + 62s), std::nullopt) << "the least recently learned goes first";
  EXPECT_EQ(cache.lookup(2, t0 + 62s), std::nullopt);
  EXPECT_EQ(cache.lookup(5, t0 + 62s), mac_b);
  ASSERT_TRUE(f.available()) << "learning 1 again woke its waiter";
}

TEST(arp_cache, waiters_are_bounded_and_group_addresses_are_not_learned) {
  arp_cache cache([](std::uint32_t) {}, {.waiting_max = 2});
  auto a = cache.resolve(1, t0);
  auto b = cache.resolve(2, t0);
  auto c = cache.resolve(3, t0);
  ASSERT_TRUE(c.available());
  EXPECT_EQ(error_of(c), ENOBUFS);
  EXPECT_EQ(cache.stats().refused, 1u);
  cache.learn(1, ethernet_address::broadcast(), t0);
  cache.learn(2, *ethernet_address::parse("01:00:5e:00:00:01"), t0);
  cache.learn(0, mac_a, t0);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_FALSE(a.available());
  EXPECT_FALSE(b.available());
  cache.learn(1, mac_a, t0);
  EXPECT_TRUE(a.available());
  EXPECT_EQ(cache.waiting(), 1u);
}

TEST(arp_cache, messages_about_others_update_but_never_add) {
  arp_cache cache([](std::uint32_t) {});
  cache.learn(1, mac_a, t0, false);  // a request for someone else: not added
  EXPECT_EQ(cache.size(), 0u);
  cache.learn(1, mac_a, t0, true);
  cache.learn(1, mac_b, t0 + 1s, false);  // known: updated
  EXPECT_EQ(cache.lookup(1, t0 + 1s), mac_b);
  auto f = cache.resolve(2, t0);
  cache.learn(2, mac_a, t0, false);  // asked for: taken
  ASSERT_TRUE(f.available());
  EXPECT_EQ(f.get(), mac_a);
}

TEST(arp_cache, one_absent_host_cannot_take_every_waiting_slot) {
  arp_cache cache([](std::uint32_t) {}, {.waiting_max = 100, .waiting_per_address_max = 3});
  std::vector<future<ethernet_address>> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(cache.resolve(9, t0));
  auto fourth = cache.resolve(9, t0);
  ASSERT_TRUE(fourth.available());
  EXPECT_EQ(error_of(fourth), ENOBUFS);
  auto other = cache.resolve(10, t0);
  EXPECT_FALSE(other.available()) << "another address still gets a slot";
  EXPECT_EQ(cache.waiting(), 4u);
}

TEST(arp_cache, an_answer_that_comes_back_at_once_is_fine) {
  arp_cache* self = nullptr;
  int asked = 0;
  arp_cache cache(
      [&](std::uint32_t ip) {
        if (++asked >= 2) self->learn(ip, mac_a, t0);  // the retry's answer, inside the send
      },
      {.first_retry = 10ms});
  self = &cache;
  auto f = cache.resolve(7, t0);
  auto g = cache.resolve(8, t0);  // answered inside resolve()'s own request
  ASSERT_TRUE(g.available());
  cache.tick(t0 + 10ms);
  ASSERT_TRUE(f.available());
  ASSERT_TRUE(g.available());
  EXPECT_EQ(f.get(), mac_a);
  EXPECT_EQ(g.get(), mac_a);
  EXPECT_EQ(cache.waiting(), 0u);
}

}  // namespace
}  // namespace reef::tcpip
