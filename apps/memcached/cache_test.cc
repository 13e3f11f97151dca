#include "apps/memcached/cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reef::memcached {
namespace {

constexpr std::uint32_t t0 = 1'800'000'000;  // a wall-clock second, in 2027

// Sets the cache's clock to a second (and `ms` past it).
void at(cache& c, std::uint32_t second, std::uint32_t ms = 0) { c.set_clock(std::uint64_t{second} * 1000 + ms); }

// What a connection does with `wire` against one shard's cache.
std::string send(cache& c, std::string_view wire) {
  std::string reply;
  request req;
  std::string line;
  while (!wire.empty()) {
    const frame f = find_request_line(wire);
    if (f.state != frame::status::line) break;
    line.assign(f.line);
    wire.remove_prefix(f.line_bytes);
    parse_request_line(line, req);
    if (!req.error.empty()) {
      reply += req.error + "\r\n";
      continue;
    }
    std::string_view data;
    if (req.has_data) {
      data = wire.substr(0, req.bytes);
      wire.remove_prefix(std::min(wire.size(), req.bytes + 2));
    }
    switch (req.kind) {
      case command::get:
      case command::gets:
      case command::gat:
      case command::gats:
        for (std::string_view k : req.keys) c.retrieve(req, k, reply);
        reply += "END\r\n";
        break;
      case command::flush_all:
        c.flush_all(req.exptime);
        if (!req.noreply) reply += "OK\r\n";
        break;
      default:
        c.execute(req, data, reply);
    }
  }
  return reply;
}

TEST(cache, set_get_and_the_storage_commands) {
  cache c;
  at(c, t0);
  EXPECT_EQ(send(c, "set a 5 0 3\r\nabc\r\n"), "STORED\r\n");
  EXPECT_EQ(send(c, "get a b\r\n"), "VALUE a 5 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(send(c, "add a 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(send(c, "add b 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(send(c, "replace zz 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(send(c, "replace b 1 0 2\r\nyy\r\n"), "STORED\r\n");
  EXPECT_EQ(send(c, "append a 9 0 2\r\nde\r\nprepend a 9 0 1\r\n_\r\n"), "STORED\r\nSTORED\r\n");
  // append/prepend keep the item's flags.
  EXPECT_EQ(send(c, "get a\r\n"), "VALUE a 5 6\r\n_abcde\r\nEND\r\n");
  EXPECT_EQ(send(c, "append zz 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(send(c, "set q 0 0 0 noreply\r\n\r\nget q\r\n"), "VALUE q 0 0\r\n\r\nEND\r\n");
  EXPECT_EQ(send(c, "delete a\r\ndelete a\r\nget a\r\n"), "DELETED\r\nNOT_FOUND\r\nEND\r\n");
}

TEST(cache, cas_compares_unique_values) {
  cache c;
  at(c, t0);
  EXPECT_EQ(send(c, "cas k 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
  send(c, "set k 0 0 1\r\nx\r\n");
  std::string gets = send(c, "gets k\r\n");
  const std::size_t at = std::string("VALUE k 0 1 ").size();
  const std::string cas = gets.substr(at, gets.find('\r') - at);
  EXPECT_EQ(send(c, "cas k 0 0 1 " + cas + "0\r\ny\r\n"), "EXISTS\r\n");
  EXPECT_EQ(send(c, "cas k 0 0 1 " + cas + "\r\ny\r\n"), "STORED\r\n");
  EXPECT_EQ(send(c, "cas k 0 0 1 " + cas + "\r\nz\r\n"), "EXISTS\r\n");
  EXPECT_EQ(send(c, "get k\r\n"), "VALUE k 0 1\r\ny\r\nEND\r\n");
  cache_stats s = c.stats();
  EXPECT_EQ(s.cas_misses, 1u);
  EXPECT_EQ(s.cas_hits, 1u);
  EXPECT_EQ(s.cas_badval, 2u);
}

TEST(cache, incr_and_decr_as_memcached) {
  cache c;
  at(c, t0);
  EXPECT_EQ(send(c, "incr n 1\r\n"), "NOT_FOUND\r\n");
  send(c, "set n 3 0 20\r\n18446744073709551615\r\n");
  // 64-bit wrap, in place, padded with spaces to the old length.
  EXPECT_EQ(send(c, "incr n 1\r\nget n\r\n"), "0\r\nVALUE n 3 20\r\n0                   \r\nEND\r\n");
  send(c, "set m 0 0 2\r\n10\r\n");
  EXPECT_EQ(send(c, "decr m 100\r\n"), "0\r\n");  // floors at 0
  EXPECT_EQ(send(c, "set m 0 0 2\r\n99\r\nincr m 1\r\nget m\r\n"), "STORED\r\n100\r\nVALUE m 0 3\r\n100\r\nEND\r\n");
  EXPECT_EQ(send(c, "set m 0 0 3\r\n 12\r\nincr m 1\r\n"), "STORED\r\n13\r\n");
  EXPECT_EQ(send(c, "set m 0 0 3\r\n12a\r\nincr m 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(send(c, "set m 0 0 0\r\n\r\nincr m 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(send(c, "incr m 1 noreply\r\n"), "");
}

TEST(cache, expiry_relative_absolute_negative_and_touch) {
  cache c;
  at(c, t0);
  send(c, "set rel 0 10 1\r\nx\r\nset abs 0 " + std::to_string(t0 + 5) + " 1\r\nx\r\nset gone 0 -1 1\r\nx\r\n");
  send(c, "set past 0 " + std::to_string(t0 - 5) + " 1\r\nx\r\nset never 0 0 1\r\nx\r\n");
  EXPECT_EQ(send(c, "get gone past\r\n"), "END\r\n");
  at(c, t0 + 5);
  EXPECT_EQ(send(c, "get abs\r\n"), "END\r\n");
  EXPECT_EQ(send(c, "get rel\r\n"), "VALUE rel 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(send(c, "touch rel 100\r\ntouch nope 1\r\n"), "TOUCHED\r\nNOT_FOUND\r\n");
  at(c, t0 + 50);
  EXPECT_EQ(send(c, "gat 1 rel\r\n"), "VALUE rel 0 1\r\nx\r\nEND\r\n");
  at(c, t0 + 52);
  EXPECT_EQ(send(c, "get rel never\r\n"), "VALUE never 0 1\r\nx\r\nEND\r\n");
  EXPECT_GE(c.stats().get_expired, 3u);
}

// A TTL counts from the store, to the millisecond: a 1-second item stored
// just before a second turns lives a whole second, not a millisecond.
TEST(cache, expiry_counts_from_the_store_to_the_millisecond) {
  cache c;
  at(c, t0, 999);
  send(c, "set k 0 1 1\r\nx\r\n");
  at(c, t0 + 1, 1);
  EXPECT_EQ(send(c, "get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
  EXPECT_EQ(send(c, "mg k t\r\n"), "HD t1\r\n");
  at(c, t0 + 1, 998);
  EXPECT_EQ(send(c, "touch k 1\r\n"), "TOUCHED\r\n");
  at(c, t0 + 2, 997);
  EXPECT_EQ(send(c, "get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
  at(c, t0 + 2, 998);
  EXPECT_EQ(send(c, "get k\r\n"), "END\r\n");
}

TEST(cache, flush_all_now_and_later) {
  cache c;
  at(c, t0);
  send(c, "set a 0 0 1\r\nx\r\nset b 0 0 1\r\nx\r\n");
  EXPECT_EQ(send(c, "flush_all\r\nget a b\r\n"), "OK\r\nEND\r\n");
  // Stored after the flush, in the same second: kept.
  EXPECT_EQ(send(c, "set a 0 0 1\r\ny\r\nget a\r\n"), "STORED\r\nVALUE a 0 1\r\ny\r\nEND\r\n");
  EXPECT_EQ(send(c, "flush_all 10 noreply\r\nget a\r\n"), "VALUE a 0 1\r\ny\r\nEND\r\n");
  // (An absolute time already past flushes now, as memcached.)
  EXPECT_EQ(send(c, "set p 0 0 1\r\nx\r\nflush_all " + std::to_string(t0 - 100) + "\r\nget p\r\n"),
            "STORED\r\nOK\r\nEND\r\n");
  at(c, t0 + 10);
  EXPECT_EQ(send(c, "get a\r\n"), "END\r\n");
  at(c, t0 + 11);
  EXPECT_EQ(send(c, "set c 0 0 1\r\nz\r\nget c\r\n"), "STORED\r\nVALUE c 0 1\r\nz\r\nEND\r\n");
  // The sweep frees what the flush left, bounded per call.
  send(c, "flush_all\r\n");
  EXPECT_GE(c.stats().curr_items, 1u);
  c.sweep(1 << 20);
  EXPECT_EQ(c.stats().curr_items, 0u);
}

TEST(cache, full_memory_evicts_the_coldest_and_keeps_what_is_used) {
  cache c({.memory_bytes = 1 << 20});
  at(c, t0);
  const std::string value(1000, 'v');
  send(c, "set hot 0 0 1000\r\n" + value + "\r\n");
  for (int i = 0; i < 5000; ++i) {
    ASSERT_EQ(send(c, "set k" + std::to_string(i) + " 0 0 1000\r\n" + value + "\r\n"), "STORED\r\n") << i;
    if (i % 100 == 0) ASSERT_EQ(send(c, "get hot\r\n").substr(0, 10), "VALUE hot ") << "the hot key was evicted";
  }
  const cache_stats s = c.stats();
  EXPECT_GT(s.evictions, 4000u);
  EXPECT_LE(s.region.segments * memory::lsa::segment_bytes + s.region.large_bytes, std::size_t{1} << 20);
  EXPECT_EQ(send(c, "get k0\r\n"), "END\r\n");  // the coldest went first
  EXPECT_EQ(send(c, "get k4999\r\n").substr(0, 12), "VALUE k4999 ");
}

// A hit marks the item instead of moving it in the LRU; an eviction gives
// marked items a second chance at the hot end. So every eviction takes an
// unused item while there is one, and when everything was used, stores
// still evict (at most 32 second chances per eviction) and succeed.
TEST(cache, eviction_takes_the_unused_first_and_progresses_when_all_were_used) {
  cache c({.memory_bytes = 1 << 20});
  at(c, t0);
  const std::string value(1000, 'v');
  auto set = [&](const std::string& key) { return send(c, "set " + key + " 0 0 1000\r\n" + value + "\r\n"); };
  auto alive = [&](const std::string& key) { return send(c, "mg " + key + " u\r\n") == "HD\r\n"; };  // no mark
  auto use = [&](const std::string& key) { ASSERT_NE(send(c, "get " + key + "\r\n"), "END\r\n") << key; };
  int fit = 0;
  while (c.stats().evictions == 0) ASSERT_EQ(set("k" + std::to_string(fit++)), "STORED\r\n");
  ASSERT_GT(fit, 200);
  // The survivors: the even ones used, the odd ones not.
  std::vector<std::string> used, unused;
  for (int i = 0; i < fit; ++i) {
    const std::string key = "k" + std::to_string(i);
    if (alive(key)) (i % 2 == 0 ? used : unused).push_back(key);
  }
  for (const auto& key : used) use(key);
  // New keys until the evictions since reach half the unused: each of
  // them took an unused key, none a used one.
  const std::uint64_t before = c.stats().evictions;
  for (int i = 0; c.stats().evictions - before < unused.size() / 2; ++i) {
    ASSERT_EQ(set("n" + std::to_string(i)), "STORED\r\n");
  }
  const std::uint64_t evicted = c.stats().evictions - before;
  ASSERT_LT(evicted, unused.size());
  std::size_t used_left = 0, unused_left = 0;
  for (const auto& key : used) used_left += alive(key);
  for (const auto& key : unused) unused_left += alive(key);
  EXPECT_EQ(used_left, used.size()) << "a used item went before an unused one";
  EXPECT_EQ(unused_left, unused.size() - evicted);
  // Every item used: stores still evict, and succeed.
  std::vector<std::string> everything;
  for (const auto& key : used) everything.push_back(key);
  for (const auto& key : unused) {
    if (alive(key)) everything.push_back(key);
  }
  for (int i = 0; alive("n" + std::to_string(i)); ++i) everything.push_back("n" + std::to_string(i));
  for (const auto& key : everything) use(key);
  const std::uint64_t all_used = c.stats().evictions;
  for (int i = 0; i < fit; ++i) ASSERT_EQ(set("m" + std::to_string(i)), "STORED\r\n") << i;
  EXPECT_GT(c.stats().evictions, all_used + static_cast<std::uint64_t>(fit) / 2);
}

// The memory test in small: 100-byte values to the limit, then
// 1000-byte, then 300-byte; after each phase live items fill most of the
// memory, because compaction gives the holes back. (Their keys and values
// are less: each item also carries its bookkeeping.)
TEST(cache, shifting_value_sizes_keep_the_memory_full_of_live_data) {
  const std::size_t limit = 4 << 20;
  cache c({.memory_bytes = limit});
  at(c, t0);
  int id = 0;
  for (std::size_t size : {100u, 1000u, 300u}) {
    const std::string value(size, 'x');
    const int writes = static_cast<int>(3 * limit / size);
    for (int i = 0; i < writes; ++i, ++id) {
      ASSERT_EQ(send(c, "set key" + std::to_string(id) + " 0 0 " + std::to_string(size) + "\r\n" + value + "\r\n"),
                "STORED\r\n");
    }
    const cache_stats s = c.stats();
    const double live = static_cast<double>(s.region.live_bytes) / static_cast<double>(limit);
    EXPECT_GT(live, 0.85) << size << "-byte values: " << s.curr_items << " items, " << s.region.live_bytes
                          << " bytes live";
  }
}

TEST(cache, items_too_large_are_refused_and_drop_the_old_value) {
  cache c({.memory_bytes = 4 << 20, .item_size_max = 1024});
  at(c, t0);
  send(c, "set big 0 0 1\r\nx\r\n");
  request req;
  parse_request_line("set big 0 0 2000", req);
  std::string reply;
  c.execute(req, {}, reply);  // the server skipped the block
  EXPECT_EQ(reply, "SERVER_ERROR object too large for cache\r\n");
  EXPECT_EQ(send(c, "get big\r\n"), "END\r\n");
  EXPECT_EQ(c.stats().store_too_large, 1u);
  EXPECT_EQ(send(c, "append big 0 0 1\r\nx\r\n"), "NOT_STORED\r\n");
  // An append that would grow past the limit: NOT_STORED, as memcached.
  send(c, "set big 0 0 900\r\n" + std::string(900, 'a') + "\r\n");
  EXPECT_EQ(send(c, "append big 0 0 200\r\n" + std::string(200, 'b') + "\r\n"), "NOT_STORED\r\n");
  // A cache too small for -I: what cannot fit beside the region's working
  // segments is too large, and evicts nothing.
  cache small({.memory_bytes = 1, .item_size_max = 1 << 20});
  at(small, t0);
  send(small, "set keep 0 0 1\r\nx\r\n");
  EXPECT_FALSE(small.fits(4, memory::lsa::bytes_max_min - 2 * memory::lsa::segment_bytes));
  EXPECT_TRUE(small.fits(4, 100000));
  EXPECT_EQ(send(small, "get keep\r\n"), "VALUE keep 0 1\r\nx\r\nEND\r\n");
}

TEST(cache, meta_get_flags_and_recache_tokens) {
  cache c;
  at(c, t0);
  EXPECT_EQ(send(c, "mg a v\r\nmg a v q\r\nmg a O1 k v\r\n"), "EN\r\nEN O1 ka\r\n");
  EXPECT_EQ(send(c, "ms a 2 T0 F5\r\nhi\r\n"), "HD\r\n");
  const std::string hit = send(c, "mg a v f t s k O123 h\r\n");
  EXPECT_EQ(hit, "VA 2 f5 t-1 s2 ka O123 h0\r\nhi\r\n");
  EXPECT_EQ(send(c, "mg a h\r\n"), "HD h1\r\n");
  // Vivify on a miss: the first client wins, the next ones see Z.
  EXPECT_EQ(send(c, "mg new N30 t s\r\n"), "HD t30 s0 W\r\n");
  EXPECT_EQ(send(c, "mg new N30 t\r\n"), "HD t30 Z\r\n");
  // Invalidate: stale (X), one winner.
  EXPECT_EQ(send(c, "md a I T30\r\n"), "HD\r\n");
  EXPECT_EQ(send(c, "mg a v\r\n"), "VA 2 X W\r\nhi\r\n");
  EXPECT_EQ(send(c, "mg a\r\n"), "HD Z X\r\n");
  // Recache: a TTL below R's wins once.
  send(c, "ms r 1 T10\r\nx\r\n");
  EXPECT_EQ(send(c, "mg r R30\r\n"), "HD W\r\n");
  EXPECT_EQ(send(c, "mg r R30\r\n"), "HD Z\r\n");
  // Base64 keys come back encoded.
  EXPECT_EQ(send(c, "ms YWJj 1 b\r\nz\r\nmg YWJj b k v\r\nget abc\r\n"),
            "HD\r\nVA 1 kYWJj b\r\nz\r\nVALUE abc 0 1\r\nz\r\nEND\r\n");
  EXPECT_EQ(send(c, "mn\r\n"), "MN\r\n");
}

TEST(cache, meta_set_modes_delete_and_arithmetic) {
  cache c;
  at(c, t0);
  EXPECT_EQ(send(c, "ms a 1 q\r\nx\r\n"), "");
  EXPECT_EQ(send(c, "ms a 1 ME\r\ny\r\n"), "NS\r\n");
  EXPECT_EQ(send(c, "ms a 1 MA\r\ny\r\nms a 1 MP\r\nw\r\nmg a v\r\n"), "HD\r\nHD\r\nVA 3\r\nwxy\r\n");
  EXPECT_EQ(send(c, "ms zz 1 MR\r\ny\r\n"), "NS\r\n");
  EXPECT_EQ(send(c, "ms a 1 C1\r\ny\r\n"), "EX\r\n");
  EXPECT_EQ(send(c, "ms nope 1 C1\r\ny\r\n"), "NF\r\n");
  EXPECT_EQ(send(c, "md zz q\r\nmd a q\r\nmd a\r\n"), "NF\r\nNF\r\n");
  EXPECT_EQ(send(c, "ma nope\r\nma nope N0 J5 v\r\nma nope v D3 MD\r\n"), "NF\r\nVA 1\r\n5\r\nVA 1\r\n2\r\n");
  EXPECT_EQ(send(c, "ma nope q\r\nma nope C1\r\nmg nope v\r\n"), "EX\r\nVA 1\r\n3\r\n");
  EXPECT_EQ(send(c, "me zz\r\n"), "EN\r\n");
  EXPECT_EQ(send(c, "me nope\r\n").substr(0, 16), "ME nope exp=-1 l");
}

TEST(cache, the_index_grows_and_every_key_stays_reachable) {
  cache c({.memory_bytes = 64 << 20});
  at(c, t0);
  for (int i = 0; i < 20000; ++i) send(c, "set k" + std::to_string(i) + " 0 0 1\r\nx\r\n");
  for (int i = 0; i < 20000; i += 2) send(c, "delete k" + std::to_string(i) + "\r\n");
  EXPECT_EQ(c.stats().curr_items, 10000u);
  for (int i = 0; i < 20000; ++i) {
    const std::string got = send(c, "get k" + std::to_string(i) + "\r\n");
    ASSERT_EQ(got == "END\r\n", i % 2 == 0) << "key k" << i << ": " << got;
  }
}

TEST(cache, key_hash_spreads_keys_over_shards) {
  unsigned counts[4] = {};
  for (int i = 0; i < 40000; ++i) ++counts[shard_of(key_hash("key:" + std::to_string(i)), 4)];
  for (unsigned n : counts) {
    EXPECT_GT(n, 9000u);
    EXPECT_LT(n, 11000u);
  }
}

}  // namespace
}  // namespace reef::memcached
