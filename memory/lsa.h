// The log-structured allocator (LSA): regions of objects that can move, so
// that memory full of holes can be compacted instead of left fragmented.
//
// A region allocates by bumping a pointer through 128 KiB segments that it
// takes from the shard's allocator (memory::allocate). Every object
// carries a 16-byte header: its size, how it moves (a migrator) and where
// its one owner keeps its address. Freeing marks the header dead and
// lowers its segment's live count; a segment with nothing live goes back to
// the allocator at once. Compaction takes the sparsest segment, moves its
// live objects to the head of the log (each with its migrator, updating its
// owner's pointer) and gives the segment back. When compaction cannot free
// enough, the region asks its owner to evict (set_evictor: a cache evicts
// from its LRU) and compacts again.
//
// Objects are reached through a handle<T>, the owner the region updates
// when it moves the object. A raw pointer into a region is valid until the
// region next moves objects: region::moves() counts the compactions that
// moved any, so a caller that keeps raw pointers across calls compares it.
//
// Work is bounded: compact_step() moves at most one segment's live objects
// (128 KiB), and reclaim() stops once the bytes asked for are back. A
// region keeps one empty segment (the spare) so that compaction can go on
// when the allocator has nothing left.
//
// Objects larger than a quarter of a segment live outside the log, in
// allocations of their own; they are never moved, and count as large_bytes.
//
// Thread rules: a region, its handles and its objects belong to the thread
// that made the region (a shard); nothing here is synchronized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace reef::memory::lsa {

/// Bytes in a segment, and where its objects start (after its descriptor).
inline constexpr std::size_t segment_bytes = 128 * 1024;
/// Objects (with their header) above this live outside the log.
inline constexpr std::size_t log_object_bytes_max = segment_bytes / 4;
/// The smallest cap a region takes (region_config::bytes_max): an open
/// segment, a full one, and room for the one compaction moves into.
inline constexpr std::size_t bytes_max_min = 4 * segment_bytes;

/// How an object moves and is destroyed. `move` constructs the object at
/// `to` from the one at `from` and ends the one at `from`; `size` is the
/// object's bytes (the header not included). `destroy` ends it in place.
/// Both run on the region's thread, inside compaction or the region's
/// destructor; `move` must not allocate at all (it runs between taking an
/// object and placing it), and neither may throw.
struct migrator {
  void (*move)(void* from, void* to, std::size_t size) noexcept;
  void (*destroy)(void* object, std::size_t size) noexcept;
};

/// A registered migrator's number (1..migrators_max-1). Registration is
/// process-wide and thread-safe; numbers are never reused.
using migrator_id = std::uint16_t;
inline constexpr migrator_id migrators_max = 256;

/// Registers `m`; at most migrators_max - 1 per process (more aborts with a
/// message naming the limit: a program registers one per type).
migrator_id register_migrator(migrator m) noexcept;

/// The migrator of bytes that move with memcpy and need no destructor.
migrator_id bytes_migrator() noexcept;

/// The migrator of T: its move constructor, then its destructor.
template <typename T>
migrator_id migrator_of() noexcept {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "objects in a region move during compaction, which cannot fail");
  static const migrator_id id = register_migrator(migrator{
      [](void* from, void* to, std::size_t) noexcept {
        T* source = static_cast<T*>(from);
        ::new (to) T(std::move(*source));
        source->~T();
      },
      [](void* object, std::size_t) noexcept { static_cast<T*>(object)->~T(); },
  });
  return id;
}

struct region_stats {
  std::size_t segments = 0;         // held, the open one and the spare included
  std::size_t live_bytes = 0;       // objects in the log, headers included
  std::size_t free_bytes = 0;       // in held segments, not live (holes and the unused tail)
  std::size_t large_bytes = 0;      // objects outside the log, headers included
  std::size_t objects = 0;          // live objects, in the log and outside it
  std::uint64_t compactions = 0;    // segments emptied by moving their objects out
  std::uint64_t objects_moved = 0;
  std::uint64_t evictions = 0;      // times the evictor freed something
  std::uint64_t segments_released = 0;  // given back to the allocator
  std::uint64_t failed_allocations = 0;
};

class region;

/// The one owner of an object in a region: moving the handle moves
/// ownership (the region learns the handle's new place), destroying it
/// destroys the object. Empty when made by default, moved from, or when
/// the allocation failed.
template <typename T>
class handle {
 public:
  handle() noexcept = default;
  handle(handle&& other) noexcept : _object(other._object), _region(other._region) {
    other._object = nullptr;
    rebind();
  }
  handle& operator=(handle&& other) noexcept;
  handle(const handle&) = delete;
  handle& operator=(const handle&) = delete;
  ~handle() { reset(); }

  /// Valid until the region next moves objects (region::moves()).
  T* get() const noexcept { return static_cast<T*>(_object); }
  T& operator*() const noexcept { return *get(); }
  T* operator->() const noexcept { return get(); }
  explicit operator bool() const noexcept { return _object != nullptr; }

  /// Destroys the object now; the handle is empty after.
  void reset() noexcept;

 private:
  friend class region;
  void rebind() noexcept;

  void* _object = nullptr;  // updated by the region when the object moves
  region* _region = nullptr;
};

/// Makes the calling shard's allocator call on this thread's regions when
/// an allocation would pass the shard's limit (memory/reclaimer.h):
/// each region in turn reclaims (compacts, then evicts) until the bytes
/// the allocation needs are back. Returns false on a thread that owns no
/// shard arena. A program with regions calls it once on each shard.
bool install_shard_reclaimer() noexcept;

/// Configuration of a region.
struct region_config {
  /// Compaction takes a segment only while it is at most this full (in
  /// sixteenths): moving a fuller one gains too little for its cost.
  unsigned compact_occupancy_max_16ths = 14;
  /// The most memory the region holds (its segments, the spare included,
  /// and its objects outside the log), in bytes; 0: no cap but the
  /// allocator's. An allocation that would pass it reclaims (compaction,
  /// then the evictor) first, and fails if that frees too little. Below
  /// the cap, allocation leaves one segment of it free while the region
  /// has no spare, so that compaction always has somewhere to move
  /// objects; an object outside the log larger than the cap less two
  /// segments fails at once (no eviction for what can never fit). A cap
  /// below bytes_max_min is raised to it.
  std::size_t bytes_max = 0;
};

class region {
 public:
  explicit region(region_config config = {}) noexcept;
  /// Destroys the objects still live (their migrators' destroy), empties
  /// their handles' pointers and gives every segment back.
  /// REQUIRES: on the region's thread; no handle of it is used after.
  ~region();
  region(const region&) = delete;
  region& operator=(const region&) = delete;

  /// Makes a T from `args` in the region. On failure (the allocator's
  /// limit, after compaction and eviction) the handle is empty.
  /// The region does not compact or evict while T's constructor runs
  /// (it holds a reclaim_lock), whatever the constructor allocates.
  template <typename T, typename... Args>
  handle<T> make(Args&&... args) {
    static_assert(alignof(T) <= 16, "objects in a region are aligned to 16");
    return construct<T>(allocate(sizeof(T), migrator_of<T>(), nullptr), std::forward<Args>(args)...);
  }

  /// Like make(), for an object of `bytes` bytes whose first sizeof(T)
  /// are a T and the rest its trailing data (a key and value, say); T must
  /// be trivially copyable: it moves with memcpy.
  template <typename T, typename... Args>
  handle<T> make_with_trailing(std::size_t bytes, Args&&... args) {
    static_assert(std::is_trivially_copyable_v<T>, "an object with trailing data moves with memcpy");
    static_assert(alignof(T) <= 16, "objects in a region are aligned to 16");
    if (bytes < sizeof(T)) return handle<T>();
    return construct<T>(allocate(bytes, bytes_migrator(), nullptr), std::forward<Args>(args)...);
  }

  /// The raw interface under handles: `size` bytes (aligned to 16; below
  /// 4 GiB) whose address the region keeps in `*owner` (and updates there
  /// when it moves them); nullptr when no memory could be had. `owner` must
  /// stay where it is until free() or owner_moved(); nullptr: set it with
  /// owner_moved() before anything can compact (under a reclaim_lock, or
  /// before the shard's next allocation once install_shard_reclaimer() ran).
  void* allocate(std::size_t size, migrator_id migrator, void** owner) noexcept;
  /// Destroys nothing: ends the object's place in the region.
  void free(void* object) noexcept;
  /// Runs the object's destroy, then free().
  void destroy(void* object) noexcept;
  /// The object's owner pointer now lives at `owner`.
  static void owner_moved(void* object, void** owner) noexcept;
  /// The object's size as allocated (its header not included).
  static std::size_t object_size(const void* object) noexcept;

  /// Empties the sparsest segment that is worth it (see region_config; and
  /// with at least 1/16 of a segment in holes, the bytes of freed objects)
  /// by moving its objects to the head of the log, and gives it back to
  /// the allocator (or keeps it as the spare, for compactions when the
  /// allocator is short). Each step removes holes and makes none, so a run
  /// of steps ends. Returns whether it moved anything: false when no
  /// segment qualifies, or under a reclaim_lock.
  bool compact_step() noexcept;
  /// Gives back at least `bytes` to the allocator if it can: compaction,
  /// then eviction and compaction in turn, until enough is back or the
  /// evictor has nothing left. Returns the bytes given back (net: segments
  /// the region holds fewer of, and objects outside the log freed); 0
  /// under a reclaim_lock or inside itself.
  std::size_t reclaim(std::size_t bytes) noexcept;

  /// Installs what reclaim() calls when compaction alone is not enough:
  /// `evictor` frees one or more objects of this region and returns
  /// whether it freed anything. Runs on the region's thread, inside
  /// reclaim() (and so inside allocate(), or inside any allocation of the
  /// shard once install_shard_reclaimer() ran); kept until replaced;
  /// destroyed with the region. It must not throw (reclaim() is noexcept)
  /// nor destroy this region.
  void set_evictor(std::function<bool()> evictor);

  /// While one is held, the region neither compacts nor evicts: raw
  /// pointers and references into it stay valid across allocations. Hold
  /// one across anything that allocates while a T& into the region is in
  /// use (`h->items.push_back(x)` with the shard reclaimer installed).
  class reclaim_lock {
   public:
    explicit reclaim_lock(region& r) noexcept : _region(r) { ++_region._reclaim_locks; }
    ~reclaim_lock() { --_region._reclaim_locks; }
    reclaim_lock(const reclaim_lock&) = delete;
    reclaim_lock& operator=(const reclaim_lock&) = delete;

   private:
    region& _region;
  };

  /// How many compactions have moved objects: raw pointers taken before a
  /// change of this value may be stale.
  std::uint64_t moves() const noexcept { return _stats.compactions; }
  region_stats stats() const noexcept;
  /// The memory the region holds, as bytes_max counts it.
  std::size_t held_bytes() const noexcept { return _stats.segments * segment_bytes + _stats.large_bytes; }

 private:
  // Whether `bytes` more would stay within the cap: for compaction, up
  // to the cap; otherwise leaving a segment's headroom while there is no
  // spare (see region_config::bytes_max).
  bool within_cap(std::size_t bytes, bool for_compaction) const noexcept {
    if (_config.bytes_max == 0) return true;
    const std::size_t headroom = for_compaction || _spare != nullptr ? 0 : segment_bytes;
    return held_bytes() + bytes + headroom <= _config.bytes_max;
  }
  struct segment;
  template <typename T, typename... Args>
  handle<T> construct(void* p, Args&&... args);
  segment* new_segment(bool for_compaction) noexcept;
  std::size_t release(segment* s) noexcept;
  bool make_room(std::size_t record_bytes, bool for_compaction) noexcept;
  void* bump(std::size_t record_bytes, bool for_compaction) noexcept;
  static unsigned filing_of(const segment* s) noexcept;
  void file(segment* s) noexcept;
  void unfile(segment* s) noexcept;
  void close_open_segment() noexcept;
  std::size_t compact(segment* s) noexcept;
  std::size_t compact_one(bool& progress) noexcept;
  std::size_t compact_chosen(bool& progress) noexcept;

  region_config _config;
  segment* _open = nullptr;   // where allocation bumps; not in a bucket
  segment* _spare = nullptr;  // kept for compaction when the allocator is short
  // Closed segments by how full they are, in sixteenths: a compaction
  // takes from the emptiest bucket. The list after them (_bucket[buckets])
  // holds those with too few holes to compact.
  static constexpr unsigned buckets = 17;
  segment* _bucket[buckets + 1] = {};
  void* _large = nullptr;  // objects outside the log, linked
  std::function<bool()> _evictor;
  region_stats _stats;
  bool _compacting = false;
  segment* _compacting_segment = nullptr;  // out of its bucket while emptied
  bool _reclaiming = false;
  bool _destroying = false;
  unsigned _reclaim_locks = 0;
  // This thread's regions, for the shard's reclaimer.
  region* _prev_region = nullptr;
  region* _next_region = nullptr;
  friend std::size_t reclaim_this_thread(std::size_t bytes) noexcept;
};

/// What install_shard_reclaimer() installs: reclaims `bytes` from this
/// thread's regions; returns the bytes given back.
std::size_t reclaim_this_thread(std::size_t bytes) noexcept;

template <typename T, typename... Args>
handle<T> region::construct(void* p, Args&&... args) {
  handle<T> h;
  if (p == nullptr) return h;
  owner_moved(p, &h._object);
  h._object = p;
  {
    reclaim_lock lock(*this);
    try {
      ::new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      h._object = nullptr;
      free(p);
      throw;
    }
  }
  h._region = this;
  return h;
}

template <typename T>
handle<T>& handle<T>::operator=(handle&& other) noexcept {
  // Take the other's object before destroying ours: ours may own it
  // (`a = std::move(a->next)`).
  void* old = _object;
  region* old_region = _region;
  _object = other._object;
  _region = other._region;
  if (&other != this) other._object = nullptr;
  rebind();
  if (old != nullptr && old != _object) old_region->destroy(old);
  return *this;
}

template <typename T>
void handle<T>::reset() noexcept {
  if (_object != nullptr) {
    void* object = _object;
    _object = nullptr;
    _region->destroy(object);
  }
}

template <typename T>
void handle<T>::rebind() noexcept {
  if (_object != nullptr) region::owner_moved(_object, &_object);
}

}  // namespace reef::memory::lsa
