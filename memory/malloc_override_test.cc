// malloc, operator new and friends, routed to the sharded allocator by
// //memory:malloc_override (not linked under sanitizers: skipped there).
#include <errno.h>
#include <malloc.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "memory/allocator.h"

namespace reef::memory {
namespace {

#if defined(REEF_NO_MALLOC_OVERRIDE)
#define SKIP_WITHOUT_OVERRIDE() GTEST_SKIP() << "the sanitizers replace malloc; the override is not linked"
#else
#define SKIP_WITHOUT_OVERRIDE() static_cast<void>(0)
#endif

bool aligned(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

// Keeps the compiler from pairing a malloc with its free and removing both.
template <typename T>
T* opaque(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

TEST(malloc_override, malloc_and_new_come_from_the_allocator) {
  SKIP_WITHOUT_OVERRIDE();
  void* p = opaque(std::malloc(10));
  EXPECT_TRUE(owns(p));
  std::free(p);
  auto q = std::make_unique<std::string>(100, 'x');
  EXPECT_TRUE(owns(q.get()));
  EXPECT_TRUE(owns(q->data()));
}

TEST(malloc_override, calloc_zero_fills_and_checks_overflow) {
  SKIP_WITHOUT_OVERRIDE();
  auto* dirty = static_cast<unsigned char*>(opaque(std::malloc(256)));
  std::memset(dirty, 0xab, 256);
  std::free(dirty);
  auto* z = static_cast<unsigned char*>(opaque(std::calloc(16, 16)));
  ASSERT_NE(z, nullptr);
  for (int i = 0; i < 256; ++i) ASSERT_EQ(z[i], 0) << i;
  std::free(z);
  errno = 0;
  EXPECT_EQ(opaque(std::calloc(SIZE_MAX / 2, 3)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(malloc_override, realloc_keeps_contents) {
  SKIP_WITHOUT_OVERRIDE();
  auto* p = static_cast<char*>(opaque(std::malloc(8)));
  std::strcpy(p, "reef");
  for (std::size_t n : {64, 10000, 200000, 16, 5}) {
    p = static_cast<char*>(std::realloc(p, n));
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(std::string(p, 4), "reef") << n;
  }
  std::free(p);
}

TEST(malloc_override, aligned_entry_points) {
  SKIP_WITHOUT_OVERRIDE();
  void* p = nullptr;
  EXPECT_EQ(posix_memalign(&p, 4096, 100), 0);
  EXPECT_TRUE(aligned(p, 4096));
  std::free(p);
  EXPECT_EQ(posix_memalign(&p, 24, 100), EINVAL) << "not a power of two";
  EXPECT_EQ(posix_memalign(&p, 2, 100), EINVAL) << "smaller than a pointer";
  void* a = opaque(aligned_alloc(256, 1000));
  EXPECT_TRUE(aligned(a, 256));
  std::free(a);
  void* m = opaque(memalign(64, 10));
  EXPECT_TRUE(aligned(m, 64));
  std::free(m);
  auto page = static_cast<std::size_t>(getpagesize());
  void* v = opaque(valloc(10));
  EXPECT_TRUE(aligned(v, page));
  std::free(v);
  void* pv = opaque(pvalloc(10));
  EXPECT_TRUE(aligned(pv, page));
  EXPECT_GE(malloc_usable_size(pv), page);
  std::free(pv);
}

TEST(malloc_override, usable_size_covers_the_request) {
  SKIP_WITHOUT_OVERRIDE();
  for (std::size_t n : {1, 100, 3000, 70000}) {
    void* p = opaque(std::malloc(n));
    EXPECT_GE(malloc_usable_size(p), n);
    std::free(p);
  }
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
}

struct alignas(512) over_aligned {
  char bytes[512];
};

TEST(malloc_override, every_operator_new_form) {
  SKIP_WITHOUT_OVERRIDE();
  auto* one = new over_aligned;
  EXPECT_TRUE(aligned(one, 512));
  EXPECT_TRUE(owns(one));
  delete one;
  auto* many = new over_aligned[3];
  EXPECT_TRUE(aligned(many, 512));
  delete[] many;
  auto* quiet = new (std::nothrow) int[10];
  EXPECT_NE(quiet, nullptr);
  delete[] quiet;
}

TEST(malloc_override, past_the_cap_malloc_returns_null_and_new_throws) {
  SKIP_WITHOUT_OVERRIDE();
  set_limit(3, 4u << 20);
  bind_this_thread_to_shard(3);
  errno = 0;
  EXPECT_EQ(opaque(std::malloc(8u << 20)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  bool threw = false;
  try {
    auto* big = new char[8u << 20];
    delete[] opaque(big);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(new (std::nothrow) char[8u << 20], nullptr);
  void* small = opaque(std::malloc(100));
  EXPECT_NE(small, nullptr) << "below the cap, allocation goes on";
  std::free(small);
  EXPECT_GE(local_stats().failed_allocations, 3u);
  unbind_this_thread();
  set_limit(3, 0);
}

TEST(malloc_override, other_threads_use_the_fallback_arena) {
  SKIP_WITHOUT_OVERRIDE();
  void* from_thread = nullptr;
  std::thread([&] { from_thread = opaque(std::malloc(64)); }).join();
  EXPECT_TRUE(owns(from_thread));
  EXPECT_EQ(owner_shard(from_thread), -1);
  std::free(from_thread);
}

}  // namespace
}  // namespace reef::memory
