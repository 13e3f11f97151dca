// The shard's allocator calling on its regions when it runs short: a cache
// that fills the shard gives memory back instead of the program failing.
// A binary of its own: the shards' arenas are process-wide and set up once.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "memory/allocator.h"
#include "memory/reclaimer.h"
#include "memory/lsa.h"

namespace reef::memory::lsa {
namespace {

constexpr std::size_t limit = 16u << 20;

struct item {
  std::uint32_t id;
  std::uint32_t bytes;
};

class lsa_reclaim : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    allocator_config c;
    c.shards = 1;
    c.limit_per_shard_bytes = limit;
    const char* why = configure(c);
    ASSERT_EQ(why, nullptr) << why;
  }
  void SetUp() override { bind_this_thread_to_shard(0); }
  void TearDown() override {
    set_reclaimer(nullptr, nullptr);
    unbind_this_thread();
  }
};

TEST_F(lsa_reclaim, install_needs_a_shard_thread) {
  unbind_this_thread();
  EXPECT_FALSE(install_shard_reclaimer());
  bind_this_thread_to_shard(0);
  EXPECT_TRUE(install_shard_reclaimer());
}

TEST_F(lsa_reclaim, a_cache_four_times_the_limit_evicts_its_oldest_and_nothing_fails) {
  ASSERT_TRUE(install_shard_reclaimer());
  region r;
  std::deque<std::pair<std::uint32_t, handle<item>>> lru;  // front: oldest
  std::uint32_t next_evicted = 0;
  bool in_order = true;
  r.set_evictor([&] {
    if (lru.empty()) return false;
    in_order = in_order && lru.front().first == next_evicted++;
    lru.pop_front();
    return true;
  });
  const std::uint32_t value_bytes = 1000;
  const std::uint32_t count = 4 * limit / value_bytes;
  for (std::uint32_t id = 0; id < count; ++id) {
    handle<item> h = r.make_with_trailing<item>(sizeof(item) + value_bytes, item{id, value_bytes});
    ASSERT_TRUE(h) << "allocation " << id << " failed: the region should have evicted";
    std::memset(h.get() + 1, static_cast<int>(id & 0xff), value_bytes);
    lru.emplace_back(id, std::move(h));
  }
  EXPECT_TRUE(in_order) << "evicted out of LRU order";
  EXPECT_GT(r.stats().evictions, 0u);
  // The limit counts what the cache holds: about a quarter of what it
  // was given stays (segments are not twice their size in the arena).
  EXPECT_GT(lru.size(), count / 8);
  for (auto& [id, h] : lru) {
    ASSERT_EQ(h->id, id);
    auto* data = reinterpret_cast<unsigned char*>(h.get() + 1);
    ASSERT_EQ(data[0], id & 0xff);
    ASSERT_EQ(data[value_bytes - 1], id & 0xff);
  }
}

TEST_F(lsa_reclaim, the_allocator_takes_memory_back_from_a_full_cache_for_other_code) {
  ASSERT_TRUE(install_shard_reclaimer());
  region r;
  std::deque<handle<item>> lru;
  r.set_evictor([&] {
    if (lru.empty()) return false;
    lru.pop_front();
    return true;
  });
  // Fill the shard with the cache, until an allocation of its own fails.
  for (;;) {
    r.set_evictor(nullptr);  // no eviction while filling: stop at the limit
    handle<item> h = r.make_with_trailing<item>(sizeof(item) + 2000, item{0, 2000});
    if (!h) break;
    lru.push_back(std::move(h));
  }
  r.set_evictor([&] {
    if (lru.empty()) return false;
    lru.pop_front();
    return true;
  });
  std::size_t items = lru.size();
  ASSERT_GT(items, 1000u);
  std::uint64_t calls = reclaimer_calls();
  // Other code on the shard now asks for 2 MiB: the cache gives way.
  void* p = memory::allocate(2u << 20);
  ASSERT_NE(p, nullptr) << "the allocator did not take memory back from the cache";
  EXPECT_GT(reclaimer_calls(), calls);
  EXPECT_LT(lru.size(), items);
  memory::free(p);
}

// Allocates from the shard while it is being made in the region.
struct allocating {
  void* buffer;
  std::uint64_t moves_before;
  explicit allocating(region& r) noexcept : buffer(memory::allocate(1u << 20)), moves_before(r.moves()) {}
};

TEST_F(lsa_reclaim, nothing_moves_while_an_object_is_being_made) {
  ASSERT_TRUE(install_shard_reclaimer());
  region r;
  std::deque<handle<item>> lru;
  // Full, in sparse segments: every other item gone.
  for (;;) {
    handle<item> h = r.make_with_trailing<item>(sizeof(item) + 2000, item{0, 2000});
    if (!h) break;
    lru.push_back(std::move(h));
  }
  for (std::size_t i = 0; i < lru.size(); i += 2) lru[i].reset();
  r.set_evictor([&] {
    while (!lru.empty() && !lru.front()) lru.pop_front();
    if (lru.empty()) return false;
    lru.pop_front();
    return true;
  });
  std::uint64_t moves = r.moves();
  handle<allocating> h = r.make<allocating>(r);
  ASSERT_TRUE(h);
  // The constructor's allocation could not make the region compact or
  // evict under the object being made.
  EXPECT_EQ(h->moves_before, moves);
  EXPECT_EQ(r.moves(), moves);
  memory::free(h->buffer);
  // Afterwards the region may reclaim again.
  EXPECT_GE(r.reclaim(segment_bytes), segment_bytes);
}

// What a program's own reclaimer may do in the middle of a compaction:
// free objects of the segment being emptied.
struct freeing_reclaimer {
  std::vector<void*> ballast;
  std::vector<handle<item>>* doomed;
};

TEST_F(lsa_reclaim, objects_freed_by_the_shard_reclaimer_during_a_compaction_are_not_moved) {
  region r;
  constexpr std::uint32_t value_bytes = 1000;  // records of 1024 bytes
  std::vector<handle<item>> first;             // the first segment's
  std::vector<handle<item>> rest;
  auto make = [&](std::uint32_t id) { return r.make_with_trailing<item>(sizeof(item) + value_bytes, item{id, value_bytes}); };
  std::size_t segments = 0;
  std::uint32_t id = 0;
  // The first segment full.
  for (;; ++id) {
    handle<item> h = make(id);
    ASSERT_TRUE(h);
    if (segments != 0 && r.stats().segments != segments) {
      rest.push_back(std::move(h));
      break;
    }
    segments = r.stats().segments;
    first.push_back(std::move(h));
  }
  // The open segment all but full: a compaction must take a fresh one.
  std::size_t per_segment = first.size();
  for (std::size_t i = 0; i + 2 < per_segment; ++i) rest.push_back(make(++id));
  ASSERT_EQ(r.stats().segments, 2u);
  // Holes in the first segment: three in four gone.
  for (std::size_t i = 0; i < first.size(); ++i) {
    if (i % 4 != 0) first[i].reset();
  }
  // The shard at its limit.
  freeing_reclaimer state{{}, &first};
  while (void* p = memory::allocate(64 * 1024)) state.ballast.push_back(p);
  ASSERT_TRUE(set_reclaimer(
      [](std::size_t, void* context) noexcept -> std::size_t {
        auto* s = static_cast<freeing_reclaimer*>(context);
        for (auto& h : *s->doomed) h.reset();
        std::size_t given = 0;
        for (int i = 0; i < 4 && !s->ballast.empty(); ++i) {
          memory::free(s->ballast.back());
          s->ballast.pop_back();
          given += 64 * 1024;
        }
        return given;
      },
      &state));
  std::uint64_t calls = reclaimer_calls();
  EXPECT_TRUE(r.compact_step());
  EXPECT_GT(reclaimer_calls(), calls) << "the compaction did not need a fresh segment";
  EXPECT_EQ(r.stats().objects, rest.size());
  for (auto& h : rest) ASSERT_EQ(h->bytes, value_bytes);
  set_reclaimer(nullptr, nullptr);
  for (void* p : state.ballast) memory::free(p);
}

TEST_F(lsa_reclaim, without_an_evictor_the_allocation_fails_cleanly) {
  ASSERT_TRUE(install_shard_reclaimer());
  region r;
  std::vector<handle<item>> kept;
  std::uint64_t failed = local_stats().failed_allocations;
  for (;;) {
    handle<item> h = r.make_with_trailing<item>(sizeof(item) + 4000, item{0, 4000});
    if (!h) break;
    kept.push_back(std::move(h));
  }
  EXPECT_GT(kept.size(), 1000u);
  EXPECT_GT(r.stats().failed_allocations, 0u);
  EXPECT_GT(local_stats().failed_allocations, failed);
  EXPECT_EQ(memory::allocate(4u << 20), nullptr);
}

}  // namespace
}  // namespace reef::memory::lsa
