// The sharded allocator through its own API (malloc_override_test covers the
// C and C++ entry points). Arenas are process-wide, so each test uses shard
// numbers of its own.
#include "memory/allocator.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace reef::memory {
namespace {

// Binds the calling thread to a shard for the scope.
struct bound_to {
  explicit bound_to(unsigned shard) { bind_this_thread_to_shard(shard); }
  ~bound_to() { unbind_this_thread(); }
};

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

// Objects each shard allocates and hands to the other in the load test.
constexpr int per_thread = 20000;

TEST(allocator, every_size_is_usable_and_aligned) {
  bound_to shard(10);
  std::vector<void*> live;
  for (std::size_t n : {0, 1, 15, 16, 17, 100, 128, 129, 1000, 4095, 4096, 4097, 16383, 16384, 16385,
                        65536, 200000, 1 << 20}) {
    void* p = allocate(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(aligned(p, 16)) << n;
    EXPECT_GE(usable_size(p), n == 0 ? 1 : n) << n;
    EXPECT_EQ(owner_shard(p), 10) << n;
    EXPECT_TRUE(owns(p));
    std::memset(p, 0x5a, usable_size(p));
    live.push_back(p);
  }
  for (void* p : live) free(p);
}

TEST(allocator, freed_memory_is_reused) {
  bound_to shard(11);
  void* a = allocate(64);
  free(a);
  void* b = allocate(60);
  EXPECT_EQ(a, b) << "a freed object of the same class comes back first";
  free(b);
  void* big = allocate(100000);
  free(big);
  void* again = allocate(100000);
  EXPECT_EQ(big, again) << "a freed span is reused";
  free(again);
}

TEST(allocator, aligned_allocations) {
  bound_to shard(12);
  for (std::size_t align = 16; align <= (2u << 20); align *= 2) {
    for (std::size_t n : {1, 24, 100, 5000, 70000}) {
      void* p = allocate_aligned(align, n);
      ASSERT_NE(p, nullptr) << align << " " << n;
      EXPECT_TRUE(aligned(p, align)) << align << " " << n;
      EXPECT_GE(usable_size(p), n);
      std::memset(p, 1, n);
      free(p);
    }
  }
  EXPECT_EQ(allocate_aligned(3, 10), nullptr) << "not a power of two";
  EXPECT_EQ(allocate_aligned(0, 10), nullptr);
  EXPECT_EQ(allocate_aligned(std::size_t{1} << 63, 10), nullptr) << "an alignment far too big";
  EXPECT_EQ(allocate_aligned(64, ~std::size_t{0} - 10), nullptr) << "a size that would overflow";
  EXPECT_EQ(allocate(~std::size_t{0}), nullptr);
}

TEST(allocator, reallocate_keeps_contents_while_growing_and_shrinking) {
  bound_to shard(13);
  auto* p = static_cast<unsigned char*>(allocate(10));
  for (int i = 0; i < 10; ++i) p[i] = static_cast<unsigned char>(i);
  for (std::size_t n : {100, 5000, 100000, 50, 10}) {
    p = static_cast<unsigned char*>(reallocate(p, n));
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(p[i], i) << "after reallocating to " << n;
  }
  EXPECT_EQ(reallocate(p, 0), nullptr);
  void* fresh = reallocate(nullptr, 32);
  EXPECT_NE(fresh, nullptr);
  free(fresh);
}

TEST(allocator, huge_allocations_come_from_the_kernel) {
  bound_to shard(14);
  std::size_t n = 40u << 20;
  auto* p = static_cast<char*>(allocate(n));
  ASSERT_NE(p, nullptr);
  p[0] = 1;
  p[n - 1] = 2;
  EXPECT_GE(usable_size(p), n);
  EXPECT_TRUE(owns(p));
  auto before = local_stats().bytes_in_use;
  free(p);
  EXPECT_LT(local_stats().bytes_in_use, before);
  void* aligned_huge = allocate_aligned(1 << 21, n);
  ASSERT_NE(aligned_huge, nullptr);
  EXPECT_TRUE(aligned(aligned_huge, 1 << 21));
  free(aligned_huge);
}

TEST(allocator, limit_makes_allocations_fail_cleanly) {
  set_limit(15, 8u << 20);
  bound_to shard(15);
  std::vector<void*> live;
  while (void* p = allocate(1u << 20)) {
    live.push_back(p);
    ASSERT_LE(live.size(), 8u) << "allocated past the 8 MiB limit";
  }
  EXPECT_GE(live.size(), 6u);
  auto s = local_stats();
  EXPECT_GE(s.failed_allocations, 1u);
  EXPECT_EQ(s.limit_bytes, 8u << 20);
  EXPECT_EQ(allocate(64u << 20), nullptr) << "huge allocations count against the limit";
  free(live.back());
  live.pop_back();
  void* again = allocate(1u << 20);
  EXPECT_NE(again, nullptr) << "freeing makes room again";
  free(again);
  for (void* p : live) free(p);
  set_limit(15, 0);
}

TEST(allocator, stats_count_allocations_and_frees) {
  bound_to shard(16);
  auto before = local_stats();
  void* a = allocate(100);
  void* b = allocate(50000);
  auto during = local_stats();
  EXPECT_EQ(during.mallocs, before.mallocs + 2);
  EXPECT_GE(during.bytes_in_use, before.bytes_in_use + 100 + 50000);
  free(a);
  free(b);
  auto after = local_stats();
  EXPECT_EQ(after.frees, before.frees + 2);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
  EXPECT_GT(after.bytes_free, 0u);
}

// Two shards hand each other memory to free, many times, with contents
// checked at every free.
TEST(allocator, cross_shard_frees_under_load_return_everything) {
  constexpr unsigned shard_a = 20, shard_b = 21;
  struct mailbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::pair<void*, std::size_t>> items;
    bool closed = false;
  };
  mailbox to_a, to_b;
  auto worker = [](unsigned shard, mailbox& out, mailbox& in, std::uint64_t seed) {
    bind_this_thread_to_shard(shard);
    std::mt19937_64 rng(seed);
    int freed = 0;
    for (int i = 0; i < per_thread; ++i) {
      std::size_t n = 1 + rng() % 3000;
      if (i % 100 == 0) n = 20000 + rng() % 100000;  // some large ones
      auto* p = static_cast<unsigned char*>(allocate(n));
      ASSERT_NE(p, nullptr);
      std::memset(p, static_cast<int>(shard), n);
      {
        std::lock_guard lock(out.mutex);
        out.items.emplace_back(p, n);
      }
      out.ready.notify_one();
      // Free what the other shard sent, checking it was not touched.
      std::deque<std::pair<void*, std::size_t>> got;
      {
        std::lock_guard lock(in.mutex);
        got.swap(in.items);
      }
      for (auto [q, m] : got) {
        auto* bytes = static_cast<unsigned char*>(q);
        ASSERT_EQ(bytes[0], bytes[m - 1]);
        ASSERT_NE(bytes[0], static_cast<unsigned char>(shard));
        free(q);
        ++freed;
      }
    }
    {
      std::lock_guard lock(out.mutex);
      out.closed = true;
    }
    out.ready.notify_one();
    for (;;) {
      std::unique_lock lock(in.mutex);
      in.ready.wait(lock, [&] { return !in.items.empty() || in.closed; });
      auto got = std::move(in.items);
      in.items.clear();
      bool done = in.closed;
      lock.unlock();
      for (auto [q, m] : got) {
        free(q);
        ++freed;
      }
      if (done && got.empty()) break;
    }
    EXPECT_EQ(freed, per_thread);
    unbind_this_thread();  // flushes the batched frees
  };
  std::thread a(worker, shard_a, std::ref(to_b), std::ref(to_a), 1);
  std::thread b(worker, shard_b, std::ref(to_a), std::ref(to_b), 2);
  a.join();
  b.join();
  // Everything each shard allocated came back: drained, nothing is in use.
  for (unsigned shard : {shard_a, shard_b}) {
    std::thread([shard] {
      bind_this_thread_to_shard(shard);
      drain_remote_frees();
      auto s = local_stats();
      EXPECT_EQ(s.bytes_in_use, 0u) << "shard " << shard << " leaked";
      EXPECT_EQ(s.mallocs, s.frees) << "shard " << shard;
      EXPECT_EQ(s.cross_shard_frees, static_cast<std::uint64_t>(per_thread)) << "shard " << shard;
      unbind_this_thread();
    }).join();
  }
}

TEST(allocator, a_thread_that_is_no_shard_frees_shard_memory) {
  void* p;
  {
    bound_to shard(22);
    p = allocate(200);
  }
  std::thread([p] { free(p); }).join();  // an unbound thread
  bound_to shard(22);                     // the owner takes it back (binding drains)
  drain_remote_frees();
  EXPECT_EQ(local_stats().bytes_in_use, 0u);
  EXPECT_EQ(local_stats().cross_shard_frees, 1u);
}

TEST(allocator, threads_that_are_no_shard_use_the_fallback_arena) {
  void* p = allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(owner_shard(p), -1);
  EXPECT_EQ(this_thread_shard(), -1);
  free(p);
}

TEST(allocator, garbage_is_refused_or_ignored) {
  free(nullptr);
  EXPECT_EQ(usable_size(nullptr), 0u);
  int on_stack = 0;
  EXPECT_FALSE(owns(&on_stack));
  EXPECT_FALSE(owns(nullptr));
  EXPECT_EQ(owner_shard(&on_stack), -1);
  allocator_config too_many;
  too_many.shards = max_shards + 1;
  EXPECT_NE(configure(too_many), nullptr);
}

}  // namespace
}  // namespace reef::memory
