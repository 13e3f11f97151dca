// The sharded allocator: one arena per shard, where memory is allocated
// without locks or atomics, and freed back to its owner.
//
// Layout: the allocator reserves (PROT_NONE, nothing committed) two virtual
// ranges: one for the fallback arena, at first use, for threads that are
// not shards (and for the process before the shards start); and one split
// into equal arenas, one per shard, when configure() says how many shards
// and how much each may hold (or, without configure(), at the first
// bind_this_thread_to_shard(), for the machine's CPUs and no limit). An
// arena's range is twice its limit, rounded up to a power of two (16 MiB
// to 32 GiB): what --memory allows, with room to fragment, not a fixed
// size per shard. The arena that owns a pointer is therefore known from its
// address alone. An arena commits its range as it grows.
//
// Inside an arena:
//   * small objects (up to 16 KiB, 36 size classes) come from per-class
//     free lists, refilled from pools of pages carved lazily;
//   * large objects are spans of whole pages from a page allocator with
//     boundary-tag coalescing;
//   * huge objects (32 MiB and up) are mapped straight from the kernel.
// With more than one NUMA node, an arena's memory is bound to its shard's
// node (mbind).
//
// Freeing: on the owner's thread, a free is a push on a free list. From any
// other thread the pointer goes back to its owner: a shard batches such
// frees per destination and hands a batch over with one atomic exchange;
// the owner frees them into its own structures when it next allocates or
// when its reactor polls (drain_remote_frees()). The fallback arena is
// shared and takes a mutex instead.
//
// Limits: configure() caps each shard's arena (--memory and
// --reserve-memory, split across shards). At the cap, memory that other
// shards freed for the arena comes home first; an allocation still past
// the cap fails: allocate() returns nullptr (malloc returns nullptr,
// operator new throws std::bad_alloc); nothing is overcommitted silently.
//
// Thread rules: allocate/free from any thread. A thread is a shard's owner
// between bind_this_thread_to_shard() and unbind_this_thread() (smp does
// this); stats for an arena are read on its owner thread (local_stats()).
//
// This package uses nothing of Reef's (DESIGN.md); //memory:malloc_override
// routes malloc and operator new here, opt-in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace reef::memory {

/// Shards with an arena of their own at most; a thread bound to a shard
/// number beyond the arenas set up uses the fallback arena (correct, but
/// with a lock).
inline constexpr unsigned max_shards = 1024;

/// Per-arena counters. Updated only by the arena's owner.
struct allocator_stats {
  std::size_t bytes_in_use = 0;     // usable bytes of live allocations
  std::size_t bytes_free = 0;       // held by the arena, not in use
  std::uint64_t mallocs = 0;
  std::uint64_t frees = 0;
  std::uint64_t cross_shard_frees = 0;  // frees of this arena's memory by other threads
  std::uint64_t failed_allocations = 0;
  std::size_t limit_bytes = 0;          // 0: no limit
};

/// How the shards' arenas are set up.
struct allocator_config {
  /// How many shards (arenas 0..shards-1).
  unsigned shards = 1;
  /// Bytes each shard may hold; 0: no limit.
  std::size_t limit_per_shard_bytes = 0;
  /// The NUMA node of each shard (empty, or one node in all: no binding).
  std::vector<int> numa_node_of_shard;
};

/// Sets up the shards' arenas: their number, address space and limits,
/// and NUMA binding. Call it before any thread binds to a shard
/// (smp/app_template does, from --smp, --memory and --reserve-memory).
/// Returns nullptr, or why nothing was changed: more than max_shards
/// shards, more shards than arenas already set up (by an earlier bind), or
/// no address space for them.
const char* configure(const allocator_config& config) noexcept;

/// The address space of each shard's arena, and how many arenas there
/// are; 0 before configure() or the first bind.
std::size_t shard_arena_bytes() noexcept;
unsigned shard_arenas() noexcept;

/// Caps shard `shard`'s arena at `bytes` (0: no limit); configure() sets
/// them all. REQUIRES: called on the arena's owner thread, or before any
/// thread owns it (the limit is the owner's plain data).
void set_limit(unsigned shard, std::size_t bytes) noexcept;

/// The calling thread becomes the owner of shard `shard`'s arena.
void bind_this_thread_to_shard(unsigned shard) noexcept;
/// The calling thread goes back to the fallback arena (flushing its
/// pending frees to other arenas first).
void unbind_this_thread() noexcept;
/// The shard whose arena the calling thread owns, or -1.
int this_thread_shard() noexcept;

/// `size` bytes aligned to 16, or nullptr if the arena's limit (or the
/// machine) is exhausted, or `size` is above 64 TiB.
void* allocate(std::size_t size) noexcept;
/// `size` bytes aligned to `alignment` (a power of two, at most 1 GiB), or
/// nullptr (also for an alignment that is not a power of two or too big).
void* allocate_aligned(std::size_t alignment, std::size_t size) noexcept;
/// Frees what allocate*() returned (nullptr is ignored), from any thread.
void free(void* p) noexcept;
/// Like realloc(): keeps the contents up to the smaller size.
void* reallocate(void* p, std::size_t size) noexcept;
/// The bytes usable at `p` (at least what was asked for).
std::size_t usable_size(void* p) noexcept;

/// Whether `p` came from this allocator.
bool owns(const void* p) noexcept;
/// The shard whose arena holds `p`: 0..max_shards-1, or -1 for the
/// fallback arena, huge allocations and foreign pointers.
int owner_shard(const void* p) noexcept;

/// Owner: frees what other threads sent back. Returns how many. Cheap when
/// there is nothing (one load).
std::size_t drain_remote_frees() noexcept;
/// Shard: hands this thread's batched frees to their owners now.
void flush_remote_frees() noexcept;

/// The calling thread's arena's counters (the fallback arena's when the
/// thread owns none).
allocator_stats local_stats() noexcept;

}  // namespace reef::memory
