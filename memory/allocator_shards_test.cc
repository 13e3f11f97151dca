// Setting up the shards' arenas: up to max_shards of them, each with the
// address space its limit calls for. A binary of its own: the arenas are
// process-wide and set up once.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "memory/allocator.h"

namespace reef::memory {
namespace {

constexpr std::size_t limit = 32u << 20;

class allocator_shards : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    allocator_config c;
    c.shards = max_shards;
    c.limit_per_shard_bytes = limit;
    const char* why = configure(c);
    ASSERT_EQ(why, nullptr) << why;
  }
};

TEST_F(allocator_shards, a_thousand_shards_each_with_an_arena_sized_from_its_limit) {
  EXPECT_GE(max_shards, 1024u);
  EXPECT_EQ(shard_arenas(), max_shards);
  EXPECT_EQ(shard_arena_bytes(), 2 * limit) << "twice the limit, not a fixed 32 GiB";
  for (unsigned shard : {0u, 127u, 128u, 500u, max_shards - 1}) {
    std::thread([shard] {
      bind_this_thread_to_shard(shard);
      EXPECT_EQ(this_thread_shard(), static_cast<int>(shard));
      void* small = allocate(100);
      void* large = allocate(1u << 20);
      ASSERT_NE(small, nullptr);
      ASSERT_NE(large, nullptr);
      EXPECT_EQ(owner_shard(small), static_cast<int>(shard));
      EXPECT_EQ(owner_shard(large), static_cast<int>(shard));
      free(small);
      free(large);
      unbind_this_thread();
    }).join();
  }
  allocator_config more;
  more.shards = max_shards + 1;
  EXPECT_NE(configure(more), nullptr) << "beyond max_shards";
}

// A shard at its cap allocates again once another shard freed its memory:
// the frees that came home are taken back before the allocation fails.
TEST_F(allocator_shards, at_the_cap_memory_freed_by_other_shards_comes_home_first) {
  constexpr unsigned owner = 7, other = 8;
  std::vector<void*> blocks;
  std::thread([&] {
    bind_this_thread_to_shard(owner);
    while (void* p = allocate(1u << 20)) blocks.push_back(p);
    unbind_this_thread();
  }).join();
  ASSERT_GE(blocks.size(), 16u);
  std::thread([&] {
    bind_this_thread_to_shard(other);
    for (void* p : blocks) free(p);  // on their way home, not there yet
    flush_remote_frees();
    unbind_this_thread();
  }).join();
  std::thread([&] {
    bind_this_thread_to_shard(owner);  // (binding would drain: allocate first)
    void* large = allocate(1u << 20);
    EXPECT_NE(large, nullptr) << "large allocation at the cap after remote frees";
    free(large);
    unbind_this_thread();
  }).join();
}

}  // namespace
}  // namespace reef::memory
