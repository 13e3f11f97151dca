#include "memory/lsa.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace reef::memory::lsa {
namespace {

// An object with trailing bytes, as a cache item would be: its id, and a
// pattern made from the id that a test checks after every move.
struct blob {
  std::uint32_t id;
  std::uint32_t bytes;  // trailing
};

handle<blob> make_blob(region& r, std::uint32_t id, std::uint32_t bytes) {
  handle<blob> h = r.make_with_trailing<blob>(sizeof(blob) + bytes, blob{id, bytes});
  if (h) {
    auto* data = reinterpret_cast<unsigned char*>(h.get() + 1);
    for (std::uint32_t i = 0; i < bytes; ++i) data[i] = static_cast<unsigned char>(id * 31 + i);
  }
  return h;
}

void expect_intact(const handle<blob>& h, std::uint32_t id) {
  ASSERT_TRUE(h);
  ASSERT_EQ(h->id, id);
  const auto* data = reinterpret_cast<const unsigned char*>(h.get() + 1);
  for (std::uint32_t i = 0; i < h->bytes; ++i) {
    if (data[i] != static_cast<unsigned char>(id * 31 + i)) {
      FAIL() << "object " << id << " byte " << i << " is " << int(data[i]);
    }
  }
}

// Counts its lives: constructions, moves, destructions.
struct counted {
  static inline int alive = 0;
  static inline int moves = 0;
  std::string text;
  explicit counted(std::string t) : text(std::move(t)) { ++alive; }
  counted(counted&& o) noexcept : text(std::move(o.text)) {
    ++alive;
    ++moves;
  }
  ~counted() { --alive; }
};

TEST(lsa, make_gives_an_object_and_stats_count_it) {
  region r;
  handle<counted> h = r.make<counted>("hello");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->text, "hello");
  region_stats s = r.stats();
  EXPECT_EQ(s.objects, 1u);
  EXPECT_EQ(s.segments, 1u);
  EXPECT_GE(s.live_bytes, sizeof(counted));
  h.reset();
  EXPECT_FALSE(h);
  EXPECT_EQ(r.stats().objects, 0u);
  EXPECT_EQ(r.stats().live_bytes, 0u);
}

TEST(lsa, compaction_moves_objects_and_their_handles_follow) {
  counted::alive = 0;
  counted::moves = 0;
  {
    region r;
    std::vector<handle<counted>> handles;
    for (int i = 0; i < 20000; ++i) handles.push_back(r.make<counted>(std::to_string(i) + std::string(40, 'x')));
    std::size_t segments_before = r.stats().segments;
    ASSERT_GT(segments_before, 4u);
    // Free three in four: every segment is a quarter full.
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (i % 4 != 0) handles[i].reset();
    }
    std::uint64_t moves_before = r.moves();
    while (r.compact_step()) {
    }
    EXPECT_GT(r.moves(), moves_before);
    EXPECT_GT(r.stats().segments_released, 0u);
    EXPECT_LE(r.stats().segments, segments_before / 4 + 2);  // a quarter live, the open segment, the spare
    EXPECT_GT(counted::moves, 0);
    for (std::size_t i = 0; i < handles.size(); i += 4) {
      ASSERT_TRUE(handles[i]);
      EXPECT_EQ(handles[i]->text, std::to_string(i) + std::string(40, 'x'));
    }
    EXPECT_EQ(counted::alive, 5000);
    // Handles moved after compaction still own their objects.
    std::vector<handle<counted>> moved;
    for (auto& h : handles) {
      if (h) moved.push_back(std::move(h));
    }
    while (r.compact_step()) {
    }
    EXPECT_EQ(moved[7]->text, std::to_string(28) + std::string(40, 'x'));
  }
  EXPECT_EQ(counted::alive, 0);  // the handles, or the region, destroyed each once
}

TEST(lsa, random_alloc_and_free_of_mixed_sizes_keeps_every_byte) {
  region r;
  std::mt19937 random(12345);
  std::map<std::uint32_t, handle<blob>> live;
  std::uint32_t next_id = 0;
  std::uint64_t compactions_seen = 0;
  for (int round = 0; round < 16; ++round) {
    for (int i = 0; i < 800; ++i) {
      std::uint32_t bytes = std::uniform_int_distribution<std::uint32_t>(0, 3000)(random);
      if (i % 50 == 0) bytes = 40000;  // outside the log
      auto h = make_blob(r, next_id, bytes);
      ASSERT_TRUE(h);
      live.emplace(next_id++, std::move(h));
    }
    // Free a random half.
    for (auto it = live.begin(); it != live.end();) {
      it = (random() % 2) ? live.erase(it) : std::next(it);
    }
    for (int step = 0; step < 6; ++step) {
      r.compact_step();
      if (r.moves() != compactions_seen) {
        compactions_seen = r.moves();
        for (auto& [id, h] : live) expect_intact(h, id);
      }
    }
    region_stats s = r.stats();
    ASSERT_EQ(s.objects, live.size());
    std::size_t in_log = 0, outside = 0;
    for (auto& [id, h] : live) {
      std::size_t record = region::object_size(h.get()) + 16;
      (record > log_object_bytes_max ? outside : in_log) += record;
    }
    ASSERT_EQ(s.live_bytes, in_log);
    ASSERT_EQ(s.large_bytes, outside);
  }
  EXPECT_GT(compactions_seen, 0u);
  for (auto& [id, h] : live) expect_intact(h, id);
}

TEST(lsa, reclaim_evicts_in_the_owners_order_when_compaction_is_not_enough) {
  region r;
  std::deque<std::pair<std::uint32_t, handle<blob>>> lru;  // front: least recently used
  std::vector<std::uint32_t> evicted;
  r.set_evictor([&] {
    if (lru.empty()) return false;
    evicted.push_back(lru.front().first);
    lru.pop_front();
    return true;
  });
  for (std::uint32_t id = 0; id < 2000; ++id) lru.emplace_back(id, make_blob(r, id, 500));
  // Full segments: compaction alone gains nothing.
  EXPECT_FALSE(r.compact_step());
  std::size_t segments = r.stats().segments;
  std::size_t back = r.reclaim(3 * segment_bytes);
  EXPECT_GE(back, 3 * segment_bytes);
  EXPECT_LT(r.stats().segments, segments);
  ASSERT_FALSE(evicted.empty());
  for (std::size_t i = 0; i < evicted.size(); ++i) EXPECT_EQ(evicted[i], i) << "evicted out of LRU order";
  EXPECT_EQ(r.stats().evictions, evicted.size());
  for (auto& [id, h] : lru) expect_intact(h, id);
}

// A capped region is a cache: it never holds more than bytes_max, and
// allocations past it evict (the owner's LRU order) instead of failing,
// while sizes shift under it (small objects, then large, then middling).
TEST(lsa, a_capped_region_stays_within_its_cap_and_evicts_to_make_room) {
  constexpr std::size_t cap = 16 * segment_bytes;
  region r(region_config{.bytes_max = cap});
  std::deque<std::pair<std::uint32_t, handle<blob>>> lru;  // front: least recently used
  std::uint64_t evicted = 0;
  r.set_evictor([&] {
    if (lru.empty()) return false;
    lru.pop_front();
    ++evicted;
    return true;
  });
  std::uint32_t id = 0;
  for (std::uint32_t bytes : {100u, 1000u, 300u, 40000u, 300u}) {
    for (int i = 0; i < 20000; ++i, ++id) {
      handle<blob> h = make_blob(r, id, bytes);
      ASSERT_TRUE(h) << "allocation " << id << " of " << bytes << " bytes failed in a capped region";
      lru.emplace_back(id, std::move(h));
      ASSERT_LE(r.held_bytes(), cap) << "after allocation " << id;
    }
    // What is live fills most of the cap: compaction closed the holes the
    // evictions left, whatever the sizes were before.
    const region_stats st = r.stats();
    EXPECT_GT(st.live_bytes + st.large_bytes, cap / 2) << "objects of " << bytes << " bytes";
  }
  EXPECT_GT(evicted, 0u);
  EXPECT_EQ(r.stats().evictions, evicted);
  for (auto& [i, h] : lru) expect_intact(h, i);
}

// An object that could never fit under the cap fails at once: nothing is
// evicted for it.
TEST(lsa, a_capped_region_refuses_at_once_what_could_never_fit) {
  region r(region_config{.bytes_max = 1});  // raised to the smallest cap
  std::vector<handle<blob>> kept;
  int evictions = 0;
  r.set_evictor([&] {
    ++evictions;
    return false;
  });
  for (std::uint32_t id = 0; id < 100; ++id) kept.push_back(make_blob(r, id, 500));
  EXPECT_FALSE(make_blob(r, 1000, bytes_max_min - segment_bytes));
  EXPECT_EQ(evictions, 0);
  EXPECT_EQ(r.stats().failed_allocations, 1u);
  // What fits beside the working segments still does.
  EXPECT_TRUE(make_blob(r, 1001, 100000));
  for (std::uint32_t id = 0; id < kept.size(); ++id) expect_intact(kept[id], id);
  EXPECT_LE(r.held_bytes(), bytes_max_min);
}

TEST(lsa, reclaim_stops_when_the_evictor_has_nothing_left) {
  region r;
  std::vector<handle<blob>> kept;
  for (std::uint32_t id = 0; id < 500; ++id) kept.push_back(make_blob(r, id, 500));
  int calls = 0;
  r.set_evictor([&] {
    ++calls;
    return false;
  });
  EXPECT_EQ(r.reclaim(100 * segment_bytes), 0u);
  EXPECT_EQ(calls, 1);
  for (std::uint32_t id = 0; id < kept.size(); ++id) expect_intact(kept[id], id);
}

TEST(lsa, bad_sizes_fail_cleanly) {
  region r;
  void* owner = nullptr;
  EXPECT_EQ(r.allocate(std::size_t{1} << 50, bytes_migrator(), &owner), nullptr);
  EXPECT_EQ(owner, nullptr);
  EXPECT_EQ(r.stats().failed_allocations, 1u);
  // Records stay below 4 GiB (their size is 32 bits).
  EXPECT_EQ(r.allocate((std::size_t{1} << 32) + 16, bytes_migrator(), &owner), nullptr);
  EXPECT_EQ(r.stats().failed_allocations, 2u);
  // Trailing bytes smaller than the object itself: refused.
  EXPECT_FALSE(r.make_with_trailing<blob>(sizeof(blob) - 1, blob{1, 0}));
  EXPECT_EQ(r.stats().objects, 0u);
}

TEST(lsa, a_throwing_constructor_leaves_nothing_behind) {
  struct throws {
    explicit throws(int) { throw std::runtime_error("no"); }
  };
  region r;
  EXPECT_THROW(r.make<throws>(1), std::runtime_error);
  EXPECT_EQ(r.stats().objects, 0u);
  EXPECT_EQ(r.stats().live_bytes, 0u);
}

TEST(lsa, the_region_destroys_what_is_left_and_empties_the_handles) {
  counted::alive = 0;
  handle<counted> small;
  handle<blob> large;
  {
    region r;
    small = r.make<counted>("left");
    large = make_blob(r, 9, 100000);
    ASSERT_GT(r.stats().large_bytes, 100000u);
    EXPECT_EQ(counted::alive, 1);
  }
  EXPECT_EQ(counted::alive, 0);
  EXPECT_FALSE(small);
  EXPECT_FALSE(large);
}

// An object that owns another of the same region.
struct node {
  int value;
  handle<node> next;
  char padding[1000];  // about 125 to a segment
  node(int v, handle<node> n) noexcept : value(v), next(std::move(n)) {}
};

TEST(lsa, a_handle_takes_its_own_child) {
  region r;
  handle<node> a = r.make<node>(1, r.make<node>(2, handle<node>()));
  a = std::move(a->next);  // the parent goes, and with it the handle moved from
  ASSERT_TRUE(a);
  EXPECT_EQ(a->value, 2);
  EXPECT_EQ(r.stats().objects, 1u);
}

TEST(lsa, objects_that_own_objects_are_destroyed_once_with_the_region) {
  counted::alive = 0;
  struct big {
    counted label;
    handle<big> child;
    char padding[40000];  // outside the log
    explicit big(std::string l) : label(std::move(l)) {}
    big(big&&) noexcept = default;
  };
  static handle<node> kept_chain;
  static handle<big> kept_parent;
  {
    region r;
    // A list built by appending, over many segments: within a segment
    // each parent lies before its child, and the region walks the
    // segments newest first; both orders come up.
    handle<node> head = r.make<node>(0, handle<node>());
    node* tail = head.get();
    for (int i = 1; i < 600; ++i) {
      tail->next = r.make<node>(i, handle<node>());
      tail = tail->next.get();
    }
    ASSERT_GT(r.stats().segments, 3u);
    // Outside the log: the child made first, the parent after.
    handle<big> child = r.make<big>("child");
    handle<big> parent = r.make<big>("parent");
    parent->child = std::move(child);
    ASSERT_GT(r.stats().large_bytes, 80000u);
    EXPECT_EQ(counted::alive, 2);
    // The handles outlive the region here: it empties them.
    kept_chain = std::move(head);
    kept_parent = std::move(parent);
  }
  EXPECT_EQ(counted::alive, 0);
  EXPECT_FALSE(kept_chain);
  EXPECT_FALSE(kept_parent);
}

TEST(lsa, segments_that_records_cannot_fill_do_not_compact_forever) {
  // Records of exactly a quarter segment: three fit, the rest of each
  // segment is room no record can use.
  region r;
  const std::uint32_t bytes = static_cast<std::uint32_t>(log_object_bytes_max - 16 - sizeof(blob));
  std::deque<std::pair<std::uint32_t, handle<blob>>> lru;
  for (std::uint32_t id = 0; id < 30; ++id) lru.emplace_back(id, make_blob(r, id, bytes));
  EXPECT_EQ(r.stats().large_bytes, 0u);
  int steps = 0;
  while (r.compact_step()) ASSERT_LT(++steps, 100) << "compaction does not end";
  int evicted = 0;
  r.set_evictor([&] {
    if (lru.empty()) return false;
    lru.pop_front();
    ++evicted;
    return true;
  });
  std::size_t back = r.reclaim(2 * segment_bytes);
  EXPECT_GE(back, 2 * segment_bytes);
  EXPECT_GT(evicted, 0);
  EXPECT_LT(r.stats().compactions, 100u);
  for (auto& [id, h] : lru) expect_intact(h, id);
}

// The limit on migrators: one more aborts, naming it (in a child process:
// the registry is the process's).
TEST(lsa_death, one_migrator_past_the_limit_aborts_naming_it) {
  EXPECT_DEATH(
      {
        for (unsigned i = 0; i < migrators_max; ++i) {
          register_migrator(migrator{[](void*, void*, std::size_t) noexcept {}, [](void*, std::size_t) noexcept {}});
        }
      },
      "more than migrators_max \\(256\\) migrators");
}

}  // namespace
}  // namespace reef::memory::lsa
