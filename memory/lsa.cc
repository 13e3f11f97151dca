#include "memory/lsa.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "memory/allocator.h"
#include "memory/reclaimer.h"

namespace reef::memory::lsa {
namespace {

// Writes a message and aborts (this package sits below Reef's assertions).
[[noreturn]] void die(const char* message) noexcept {
  [[maybe_unused]] auto rc = ::write(STDERR_FILENO, message, std::strlen(message));
  ::abort();
}

#define LSA_CHECK(cond, message) \
  do {                           \
    if (!(cond)) die("lsa: " message "\n"); \
  } while (false)

migrator g_migrators[migrators_max];
std::atomic<unsigned> g_migrator_count{1};  // 0: a dead record

// Every record: this header, then the object, in multiples of 16 bytes.
struct alignas(16) object_header {
  // Outside the log: the record's bytes (header included). In the log:
  // the record's bytes / 16 in the low half, and its offset in its segment
  // / 16 in the high half (segments are not aligned: an object finds its
  // segment by this offset).
  std::uint32_t packed;
  migrator_id migrator;
  std::uint8_t large;  // outside the log
  std::uint8_t live;
  void** owner;  // where the object's address is kept
};
static_assert(sizeof(object_header) == 16);
static_assert(segment_bytes / 16 <= 0x10000 && log_object_bytes_max / 16 < 0x10000);

std::size_t record_bytes_of(const object_header* h) noexcept {
  return h->large ? h->packed : std::size_t{h->packed & 0xffffu} * 16;
}

std::uint32_t pack_log(std::size_t record_bytes, std::size_t offset) noexcept {
  return static_cast<std::uint32_t>(record_bytes / 16 | (offset / 16) << 16);
}

// Before the header of an object outside the log: the region's list of them.
struct alignas(16) large_links {
  large_links* prev;
  large_links* next;
};
static_assert(sizeof(large_links) == 16);

constexpr std::size_t round16(std::size_t n) { return (n + 15) & ~std::size_t{15}; }

object_header* header_of(const void* object) noexcept {
  return const_cast<object_header*>(static_cast<const object_header*>(object) - 1);
}

}  // namespace

// At the start of each segment.
struct region::segment {
  region* owner;
  segment* prev;  // in its bucket
  segment* next;
  std::uint32_t live;  // bytes of live records
  std::uint32_t used;  // offset of the first byte not yet bumped
  unsigned bucket;     // buckets: not filed
};

namespace {
constexpr std::size_t descriptor_bytes = 64;

constexpr std::size_t capacity = segment_bytes - descriptor_bytes;
// Records stay below 4 GiB: their size is a 32-bit field.
constexpr std::size_t size_max = (std::size_t{1} << 32) - 64;
constexpr unsigned not_filed = ~0u;
// A segment is compacted only with at least this many bytes of holes.
constexpr std::size_t holes_min = capacity / 16;

unsigned bucket_of(std::size_t live) noexcept { return static_cast<unsigned>(live * 16 / capacity); }
}  // namespace

migrator_id register_migrator(migrator m) noexcept {
  LSA_CHECK(m.move != nullptr && m.destroy != nullptr, "register_migrator: a migrator needs move and destroy");
  unsigned id = g_migrator_count.fetch_add(1, std::memory_order_relaxed);
  LSA_CHECK(id < migrators_max, "register_migrator: more than migrators_max (256) migrators");
  g_migrators[id] = m;
  return static_cast<migrator_id>(id);
}

migrator_id bytes_migrator() noexcept {
  static const migrator_id id = register_migrator(migrator{
      [](void* from, void* to, std::size_t size) noexcept { std::memcpy(to, from, size); },
      [](void*, std::size_t) noexcept {},
  });
  return id;
}

namespace {
thread_local region* t_regions = nullptr;
}  // namespace

region::region(region_config config) noexcept : _config(config) {
  static_assert(sizeof(segment) <= descriptor_bytes);
  LSA_CHECK(_config.compact_occupancy_max_16ths <= 16, "region: compact_occupancy_max_16ths is above 16");
  if (_config.bytes_max != 0) _config.bytes_max = std::max(_config.bytes_max, bytes_max_min);
  _next_region = t_regions;
  if (_next_region != nullptr) _next_region->_prev_region = this;
  t_regions = this;
}

std::size_t reclaim_this_thread(std::size_t bytes) noexcept {
  std::size_t freed = 0;
  for (region* r = t_regions; r != nullptr && freed < bytes; r = r->_next_region) {
    freed += r->reclaim(bytes - freed);
  }
  return freed;
}

bool install_shard_reclaimer() noexcept {
  return memory::set_reclaimer([](std::size_t bytes, void*) noexcept { return reclaim_this_thread(bytes); },
                               nullptr);
}

region::~region() {
  if (_prev_region != nullptr) {
    _prev_region->_next_region = _next_region;
  } else {
    LSA_CHECK(t_regions == this, "~region: destroyed on another thread than the one that made it");
    t_regions = _next_region;
  }
  if (_next_region != nullptr) _next_region->_prev_region = _prev_region;

  // Destroy every live object first, and free memory only after: a
  // destructor may destroy other objects of the region (a handle inside an
  // object), or empty a handle that lies in another object, which must
  // still be there. While destroying, free() only marks records dead.
  _destroying = true;
  auto end_record = [](object_header* h) {
    if (!h->live) return;
    h->live = 0;
    g_migrators[h->migrator].destroy(h + 1, record_bytes_of(h) - sizeof(object_header));
    if (h->owner != nullptr) *h->owner = nullptr;
  };
  auto end_records = [&](segment* s) {
    for (std::size_t at = descriptor_bytes; at < s->used;) {
      auto* h = reinterpret_cast<object_header*>(reinterpret_cast<char*>(s) + at);
      at += record_bytes_of(h);
      end_record(h);
    }
  };
  if (_open != nullptr) end_records(_open);
  for (segment* head : _bucket) {
    for (segment* s = head; s != nullptr; s = s->next) end_records(s);
  }
  for (auto* l = static_cast<large_links*>(_large); l != nullptr; l = l->next) {
    end_record(reinterpret_cast<object_header*>(l + 1));
  }

  if (_open != nullptr) memory::free(_open);
  if (_spare != nullptr) memory::free(_spare);
  for (segment*& head : _bucket) {
    while (head != nullptr) {
      segment* s = head;
      head = s->next;
      memory::free(s);
    }
  }
  auto* large = static_cast<large_links*>(_large);
  while (large != nullptr) {
    large_links* next = large->next;
    memory::free(large);
    large = next;
  }
}

region::segment* region::new_segment(bool for_compaction) noexcept {
  // At the cap, only the spare (for compaction) is to be had.
  void* p = within_cap(segment_bytes, for_compaction) ? memory::allocate(segment_bytes) : nullptr;
  if (p == nullptr && for_compaction && _spare != nullptr) {
    p = _spare;
    _spare = nullptr;
    --_stats.segments;
  }
  if (p == nullptr) return nullptr;
  auto* s = static_cast<segment*>(p);
  *s = segment{this, nullptr, nullptr, 0, descriptor_bytes, not_filed};
  ++_stats.segments;
  return s;
}

std::size_t region::release(segment* s) noexcept {
  if (_spare == nullptr) {
    _spare = s;  // still counted in segments
    return 0;
  }
  memory::free(s);
  --_stats.segments;
  ++_stats.segments_released;
  return segment_bytes;
}

unsigned region::filing_of(const segment* s) noexcept {
  // Too few holes to be worth compacting: the list after the buckets.
  if (s->used - descriptor_bytes - s->live < holes_min) return buckets;
  return bucket_of(s->live);
}

void region::file(segment* s) noexcept {
  unsigned b = filing_of(s);
  s->bucket = b;
  s->prev = nullptr;
  s->next = _bucket[b];
  if (s->next != nullptr) s->next->prev = s;
  _bucket[b] = s;
}

void region::unfile(segment* s) noexcept {
  LSA_CHECK(s->bucket <= buckets, "unfile: the segment is in no bucket");
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    _bucket[s->bucket] = s->next;
  }
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  s->bucket = not_filed;
}

void region::close_open_segment() noexcept {
  segment* s = _open;
  _open = nullptr;
  if (s == nullptr) return;
  if (s->live == 0) {
    release(s);
  } else {
    file(s);
  }
}

bool region::make_room(std::size_t record_bytes, bool for_compaction) noexcept {
  if (_open != nullptr && _open->used + record_bytes <= segment_bytes) return true;
  segment* fresh = new_segment(for_compaction);
  if (fresh == nullptr) return false;
  // (The allocation may have run the shard's reclaimer, and this region's
  // reclaim() with it, which may have opened a segment of its own.)
  if (_open != nullptr && _open->used + record_bytes <= segment_bytes) {
    release(fresh);
    return true;
  }
  close_open_segment();
  _open = fresh;
  return true;
}

void* region::bump(std::size_t record_bytes, bool for_compaction) noexcept {
  if (!make_room(record_bytes, for_compaction)) return nullptr;
  void* record = reinterpret_cast<char*>(_open) + _open->used;
  _open->used += static_cast<std::uint32_t>(record_bytes);
  _open->live += static_cast<std::uint32_t>(record_bytes);
  _stats.live_bytes += record_bytes;
  return record;
}

void* region::allocate(std::size_t size, migrator_id migrator, void** owner) noexcept {
  LSA_CHECK(migrator != 0 && migrator < g_migrator_count.load(std::memory_order_relaxed),
            "allocate: the migrator is not registered");
  if (size > size_max) {
    ++_stats.failed_allocations;
    return nullptr;
  }
  std::size_t record_bytes = round16(size + sizeof(object_header));
  object_header* h = nullptr;
  if (record_bytes > log_object_bytes_max) {
    const std::size_t large_bytes = record_bytes + sizeof(large_links);
    if (_config.bytes_max != 0 && large_bytes + 2 * segment_bytes > _config.bytes_max) {
      ++_stats.failed_allocations;  // it could never fit: evict nothing for it
      return nullptr;
    }
    void* p = within_cap(large_bytes, false) ? memory::allocate(large_bytes) : nullptr;
    if (p == nullptr) {
      reclaim(large_bytes);
      p = within_cap(large_bytes, false) ? memory::allocate(large_bytes) : nullptr;
    }
    if (p == nullptr) {
      ++_stats.failed_allocations;
      return nullptr;
    }
    auto* links = static_cast<large_links*>(p);
    links->prev = nullptr;
    links->next = static_cast<large_links*>(_large);
    if (links->next != nullptr) links->next->prev = links;
    _large = links;
    h = reinterpret_cast<object_header*>(links + 1);
    *h = object_header{static_cast<std::uint32_t>(record_bytes), migrator, 1, 1, owner};
    _stats.large_bytes += record_bytes;
  } else {
    void* p = bump(record_bytes, false);
    if (p == nullptr) {
      reclaim(segment_bytes);
      p = bump(record_bytes, false);
    }
    if (p == nullptr) {
      ++_stats.failed_allocations;
      return nullptr;
    }
    h = static_cast<object_header*>(p);
    std::size_t offset = static_cast<std::size_t>(static_cast<char*>(p) - reinterpret_cast<char*>(_open));
    *h = object_header{pack_log(record_bytes, offset), migrator, 0, 1, owner};
  }
  ++_stats.objects;
  if (owner != nullptr) *owner = h + 1;
  return h + 1;
}

void region::free(void* object) noexcept {
  object_header* h = header_of(object);
  if (_destroying) {
    h->live = 0;  // ~region frees the memory
    return;
  }
  LSA_CHECK(h->live == 1, "free: the object is not live (freed twice?)");
  h->live = 0;
  --_stats.objects;
  if (h->large) {
    auto* links = reinterpret_cast<large_links*>(h) - 1;
    if (links->prev != nullptr) {
      links->prev->next = links->next;
    } else {
      _large = links->next;
    }
    if (links->next != nullptr) links->next->prev = links->prev;
    _stats.large_bytes -= record_bytes_of(h);
    memory::free(links);
    return;
  }
  auto* s = reinterpret_cast<segment*>(reinterpret_cast<char*>(h) - std::size_t{h->packed >> 16} * 16);
  LSA_CHECK(s->owner == this, "free: the object is not this region's");
  std::size_t record_bytes = record_bytes_of(h);
  LSA_CHECK(s->live >= record_bytes, "free: a segment's live count is below its records'");
  s->live -= static_cast<std::uint32_t>(record_bytes);
  _stats.live_bytes -= record_bytes;
  if (s == _open) {
    if (s->live == 0) s->used = descriptor_bytes;  // all dead: start over
    return;
  }
  if (s == _compacting_segment) return;  // compact_chosen() files or releases it
  if (s->live == 0) {
    unfile(s);
    release(s);
  } else if (filing_of(s) != s->bucket) {
    unfile(s);
    file(s);
  }
}

void region::destroy(void* object) noexcept {
  object_header* h = header_of(object);
  if (_destroying && !h->live) return;  // ~region got to it first
  g_migrators[h->migrator].destroy(object, record_bytes_of(h) - sizeof(object_header));
  free(object);
}

void region::owner_moved(void* object, void** owner) noexcept { header_of(object)->owner = owner; }

std::size_t region::object_size(const void* object) noexcept {
  return record_bytes_of(header_of(object)) - sizeof(object_header);
}

// Moves the live objects of `s` to the head of the log; returns how many
// moved (all of them unless the allocator and the spare ran dry).
std::size_t region::compact(segment* s) noexcept {
  std::size_t moved = 0;
  for (std::size_t at = descriptor_bytes; at < s->used;) {
    auto* from = reinterpret_cast<object_header*>(reinterpret_cast<char*>(s) + at);
    std::size_t record_bytes = record_bytes_of(from);
    // Room first: a fresh segment's allocation can run the shard's
    // reclaimer, which may free this very object; so look at it after.
    if (from->live && !make_room(record_bytes, true)) break;
    if (from->live) {
      LSA_CHECK(s->live >= record_bytes, "compact: a segment's live count is below its records'");
      auto* to = static_cast<object_header*>(bump(record_bytes, true));
      LSA_CHECK(to != nullptr, "compact: no room after making room");
      *to = *from;
      to->packed = pack_log(record_bytes, static_cast<std::size_t>(reinterpret_cast<char*>(to) -
                                                                    reinterpret_cast<char*>(_open)));
      g_migrators[from->migrator].move(from + 1, to + 1, record_bytes - sizeof(object_header));
      if (to->owner != nullptr) *to->owner = to + 1;
      from->live = 0;
      s->live -= static_cast<std::uint32_t>(record_bytes);
      _stats.live_bytes -= record_bytes;  // counted again by bump()
      ++_stats.objects_moved;
      ++moved;
    }
    at += record_bytes;
  }
  return moved;
}

bool region::compact_step() noexcept {
  bool progress = false;
  compact_one(progress);
  return progress;
}

std::size_t region::compact_one(bool& progress) noexcept {
  progress = false;
  if (_reclaim_locks > 0 || _compacting) return 0;
  // From here until the segment is released or filed again, the segment
  // chosen must not be touched by anyone else: a fresh segment's
  // allocation can call the shard's reclaimer, which comes back here.
  _compacting = true;
  std::size_t given_back = compact_chosen(progress);
  _compacting = false;
  return given_back;
}

std::size_t region::compact_chosen(bool& progress) noexcept {
  // The sparsest segment worth compacting: within the occupancy limit, and
  // with holes (bytes of dead records) of at least holes_min (segments
  // with fewer are filed apart, see filing_of()). Moving its objects to the
  // head of the log removes its holes; a run of steps ends, since a step
  // that moves everything makes no holes, and one that runs out of memory
  // stops the run. A segment whose only free room is a tail no record
  // fits (three 32 KiB records) has no holes and is never taken.
  segment* s = nullptr;
  for (unsigned b = 0; b <= _config.compact_occupancy_max_16ths && b < buckets && s == nullptr; ++b) {
    s = _bucket[b];
  }
  if (s == nullptr) return 0;
  _compacting_segment = s;
  unfile(s);
  std::size_t moved = compact(s);
  _compacting_segment = nullptr;
  if (moved > 0) {
    ++_stats.compactions;
    progress = true;
  }
  if (s->live == 0) return release(s);
  // Out of memory for the moves: what moved moved; the rest stays.
  file(s);
  return 0;
}

std::size_t region::reclaim(std::size_t bytes) noexcept {
  // Not inside itself (a compaction's segment, or the evictor,
  // allocating), nor while someone holds raw pointers.
  if (_compacting || _reclaiming || _reclaim_locks > 0) return 0;
  _reclaiming = true;
  // What went back to the allocator, net, by any path: a compaction, or
  // an eviction that emptied a segment or freed an object outside the log
  // (a compaction may also have taken a fresh segment).
  const std::size_t segments_before = _stats.segments;
  const std::size_t large_before = _stats.large_bytes;
  auto freed = [&] {
    std::size_t large_freed = large_before > _stats.large_bytes ? large_before - _stats.large_bytes : 0;
    std::size_t segments_freed = segments_before > _stats.segments ? segments_before - _stats.segments : 0;
    return segments_freed * segment_bytes + large_freed;
  };
  // Bounded: every turn compacts a segment or evicts; the evictor runs
  // out, and so do sparse segments.
  for (unsigned turn = 0; freed() < bytes && turn < (1u << 20); ++turn) {
    bool progress = false;
    compact_one(progress);
    if (progress) continue;
    // Nothing sparse enough: free objects, and with them room to compact.
    if (!_evictor || !_evictor()) break;
    ++_stats.evictions;
  }
  _reclaiming = false;
  return freed();
}

void region::set_evictor(std::function<bool()> evictor) { _evictor = std::move(evictor); }

region_stats region::stats() const noexcept {
  region_stats s = _stats;
  s.free_bytes = s.segments * capacity - s.live_bytes;
  return s;
}

}  // namespace reef::memory::lsa
