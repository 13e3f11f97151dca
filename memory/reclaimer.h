// A shard's reclaimer: what its arena calls when an allocation would pass
// the shard's limit, so that a cache gives memory back instead of the
// program failing (//memory:lsa installs one; see lsa::install_shard_reclaimer).
//
// Part of //memory:allocator (the arena calls it); a header of its own so
// that what includes allocator.h does not depend on it.
//
// Thread rules: set and read on the shard's own thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace reef::memory {

/// Called when an allocation would pass the shard's limit (after memory
/// other shards freed for it came home): it frees memory of this arena (a
/// cache evicting, an LSA region compacting) and returns the bytes it gave
/// back; `bytes` is how much more the allocation needs. The allocation is
/// then tried once more. It runs on the shard's thread, inside the
/// allocation that ran short, never inside itself (an allocation it makes
/// that runs short simply fails). It may free, and allocate, from this
/// arena.
using reclaimer = std::size_t (*)(std::size_t bytes, void* context) noexcept;

/// Installs `fn` (with `context`) on the calling thread's shard arena;
/// nullptr removes it, and so does unbind_this_thread(). Returns false,
/// and installs nothing, on a thread that owns no shard arena (the
/// fallback arena is shared under a lock).
bool set_reclaimer(reclaimer fn, void* context) noexcept;

/// How many times the calling thread's shard arena called its reclaimer
/// (0 on a thread that owns none).
std::uint64_t reclaimer_calls() noexcept;

}  // namespace reef::memory
