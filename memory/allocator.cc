#include "memory/allocator.h"
#include "memory/reclaimer.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <algorithm>
#include <new>

namespace reef::memory {

namespace {

// --- Geometry. ------------------------------------------------------------

constexpr std::size_t page_bits = 12;
constexpr std::size_t page_size = std::size_t{1} << page_bits;
// Address space per arena, as a power of two: at most 32 GiB, at least
// 16 MiB. A shard's arena gets twice its limit (room for fragmentation),
// or, with no limit, as much of 32 GiB as fits beside the others where the
// reservation fits (ThreadSanitizer leaves programs a few TiB, valgrind
// and `ulimit -v` less). The fallback arena gets what fits of 32 GiB.
constexpr std::size_t arena_bits_most = 35;
constexpr std::size_t arena_bits_least = 24;
constexpr unsigned arena_count = max_shards + 1;  // the last one is the fallback
constexpr unsigned fallback_index = max_shards;
// Shard arenas reserved when nothing configured them (tests, programs
// without app_template): the machine's CPUs, at least this many.
constexpr unsigned default_shard_slots = 64;
constexpr std::size_t small_max = 16 * 1024;
constexpr std::size_t huge_min = 32u << 20;
constexpr std::size_t commit_step = 2u << 20;  // commit address space 2 MiB at a time
// Requests above these fail (nullptr) before any arithmetic can overflow.
constexpr std::size_t alignment_max = std::size_t{1} << 30;
constexpr std::size_t size_max = std::size_t{1} << 46;

// Writes a message and aborts: the allocator's invariants are broken (the
// allocator cannot use Reef's assertions: it sits below them).
[[noreturn]] void die(const char* message) noexcept {
  [[maybe_unused]] auto rc = ::write(STDERR_FILENO, message, std::strlen(message));
  ::abort();
}

// --- Size classes: 16..128 by 16, then four per doubling up to 16 KiB. -----

constexpr unsigned class_count = 36;

constexpr std::size_t class_size_of(unsigned c) {
  if (c < 8) return 16 * (c + 1);
  unsigned group = (c - 8) / 4;          // 0: 160..256, 1: 320..512, ...
  unsigned step = (c - 8) % 4;           // 1..4 quarters above the base
  std::size_t base = std::size_t{128} << group;
  return base + (base / 4) * (step + 1);
}
static_assert(class_size_of(0) == 16 && class_size_of(7) == 128);
static_assert(class_size_of(8) == 160 && class_size_of(11) == 256);
static_assert(class_size_of(35) == small_max);

// size -> class, for sizes up to small_max in steps of 16.
struct class_table {
  unsigned char of[small_max / 16 + 1];
  constexpr class_table() : of() {
    unsigned c = 0;
    for (std::size_t i = 0; i <= small_max / 16; ++i) {
      std::size_t size = i * 16;
      while (class_size_of(c) < size) ++c;
      of[i] = static_cast<unsigned char>(c);
    }
  }
};
constexpr class_table classes;

inline unsigned class_of(std::size_t size) noexcept { return classes.of[(size + 15) >> 4]; }

struct class_size_table {
  std::uint32_t size[class_count];
  constexpr class_size_table() : size() {
    for (unsigned c = 0; c < class_count; ++c) size[c] = static_cast<std::uint32_t>(class_size_of(c));
  }
};
constexpr class_size_table class_sizes;

inline std::size_t size_of_class(unsigned c) noexcept { return class_sizes.size[c]; }

// Pages per pool of a class: enough for 32 objects, at most 256 KiB.
constexpr std::size_t pool_pages_of(unsigned c) {
  std::size_t bytes = class_size_of(c) * 32;
  if (bytes > 256 * 1024) bytes = 256 * 1024;
  if (bytes < page_size) bytes = page_size;
  return (bytes + page_size - 1) / page_size;
}

// --- Per-page metadata. ---------------------------------------------------

enum class page_kind : std::uint8_t { unused, small, large, free };

// One per page of an arena. For spans (large, free) the first and last pages
// carry the length (boundary tags); every page of a large span carries the
// distance to its first page, so that an aligned pointer inside it finds it.
struct page_info {
  std::uint32_t span_pages;
  std::uint32_t head_offset;
  page_kind kind;
  std::uint8_t size_class;
};


// A free span's first bytes: its links in its size bucket.
struct free_span {
  free_span* next;
  free_span* prev;
};

struct free_object {
  free_object* next;
};

constexpr unsigned span_buckets = 32;

inline unsigned floor_log2(std::size_t n) noexcept {
  return static_cast<unsigned>(63 - __builtin_clzll(n));
}

// A huge allocation's header, right before the pointer handed out; every
// live one is on a process-wide list, so that a pointer outside the arenas
// can be recognized without reading memory that may not be ours.
struct huge_header {
  huge_header* next;
  huge_header* prev;
  void* user;
  void* mapping;
  std::size_t mapping_size;
  std::size_t usable;
  int arena;
};

std::mutex huge_mutex;  // taken after fallback_mutex, never before
huge_header* huge_list = nullptr;

void register_huge(huge_header* h) noexcept {
  std::lock_guard lock(huge_mutex);
  h->prev = nullptr;
  h->next = huge_list;
  if (huge_list != nullptr) huge_list->prev = h;
  huge_list = h;
}

void unregister_huge(huge_header* h) noexcept {
  std::lock_guard lock(huge_mutex);
  (h->prev != nullptr ? h->prev->next : huge_list) = h->next;
  if (h->next != nullptr) h->next->prev = h->prev;
}

// The header of the huge allocation at `p`, or nullptr: p is not ours.
huge_header* find_huge(const void* p) noexcept {
  std::lock_guard lock(huge_mutex);
  for (huge_header* h = huge_list; h != nullptr; h = h->next) {
    if (h->user == p) return h;
  }
  return nullptr;
}

// --- Arenas. ----------------------------------------------------------------

class arena {
 public:
  // The arena's address space: 2^size_bits bytes at `start`, its metadata
  // first, then its data.
  void init(unsigned index, char* start, std::size_t size_bits) noexcept {
    _index = index;
    const std::size_t arena_pages = (std::size_t{1} << size_bits) >> page_bits;
    const std::size_t meta_pages = (arena_pages * sizeof(page_info) + page_size - 1) / page_size;
    _data_pages = arena_pages - meta_pages;
    _meta = reinterpret_cast<page_info*>(start);
    _data = start + meta_pages * page_size;
    _data_end = _data + (_data_pages << page_bits);
    _committed_pages = 0;
  }

  std::size_t data_pages() const noexcept { return _data_pages; }

  unsigned index() const noexcept { return _index; }

  // The common case of allocate(): a free object of the class, or nullptr.
  [[gnu::always_inline]] void* try_allocate_small(std::size_t size) noexcept {
    unsigned c = class_of(size);
    free_object* o = _free[c];
    if (o == nullptr) return nullptr;
    _free[c] = o->next;
    ++_small_allocs[c];
    return o;
  }

  [[gnu::always_inline]] void* allocate_small(std::size_t size) noexcept {
    unsigned c = class_of(size);
    if (free_object* o = _free[c]) {
      _free[c] = o->next;
      ++_small_allocs[c];
      return o;
    }
    return refill(c);
  }

  void* allocate_large(std::size_t size, std::size_t alignment) noexcept {
    std::size_t pages = (size + page_size - 1) >> page_bits;
    std::size_t extra = alignment > page_size ? (alignment >> page_bits) - 1 : 0;
    std::size_t first = allocate_pages(pages + extra);
    if (first == npos) return fail();
    char* start = page_address(first);
    char* p = start;
    if (extra > 0) {
      auto a = reinterpret_cast<std::uintptr_t>(start);
      p = reinterpret_cast<char*>((a + alignment - 1) & ~(alignment - 1));
    }
    std::size_t total = pages + extra;
    for (std::size_t i = 0; i < total; ++i) {
      page_info& pi = _meta[first + i];
      pi.kind = page_kind::large;
      pi.head_offset = static_cast<std::uint32_t>(i);
      pi.span_pages = 0;
    }
    _meta[first].span_pages = static_cast<std::uint32_t>(total);
    _meta[first + total - 1].span_pages = static_cast<std::uint32_t>(total);
    _stats.mallocs++;
    _stats.bytes_in_use += usable_at(p);
    return p;
  }

  void* allocate_aligned_small(std::size_t alignment, std::size_t size) noexcept {
    // A class whose size is a multiple of the alignment gives aligned
    // objects: pools start on a page boundary.
    for (unsigned c = class_of(size); c < class_count; ++c) {
      if (size_of_class(c) % alignment == 0) return allocate_small(size_of_class(c));
    }
    return allocate_large(size, alignment);
  }

  // REQUIRES: p belongs to this arena: inside its range, or a huge
  // allocation it made.
  [[gnu::always_inline]] void free_local(void* p) noexcept {
    if (!contains(p)) [[unlikely]] {
      free_huge(p);
      return;
    }
    std::size_t page = page_of(p);
    page_info& pi = _meta[page];
    if (pi.kind == page_kind::small) [[likely]] {
      unsigned c = pi.size_class;
      auto* o = static_cast<free_object*>(p);
      o->next = _free[c];
      _free[c] = o;
      ++_small_frees[c];
      return;
    }
    free_large(p, page);
  }

  // The common case of free(): a small object of this arena, freed by its
  // owner. False if `p` is anything else.
  [[gnu::always_inline]] bool try_free_small(void* p) noexcept {
    if (!contains(p)) return false;
    page_info& pi = _meta[page_of(p)];
    if (pi.kind != page_kind::small) return false;
    unsigned c = pi.size_class;
    auto* o = static_cast<free_object*>(p);
    o->next = _free[c];
    _free[c] = o;
    ++_small_frees[c];
    return true;
  }

  [[gnu::noinline]] void free_large(void* p, std::size_t page) noexcept {
    page_info& pi = _meta[page];
    if (pi.kind != page_kind::large) die("reef allocator: free() of a pointer it did not hand out\n");
    std::size_t first = page - pi.head_offset;
    std::size_t pages = _meta[first].span_pages;
    _stats.frees++;
    _stats.bytes_in_use -= (pages << page_bits) - (static_cast<char*>(p) - page_address(first));
    free_pages(first, pages);
  }

  std::size_t usable_at(void* p) const noexcept {
    std::size_t page = page_of(p);
    const page_info& pi = _meta[page];
    if (pi.kind == page_kind::small) return size_of_class(pi.size_class);
    std::size_t first = page - pi.head_offset;
    std::size_t pages = _meta[first].span_pages;
    return (pages << page_bits) - static_cast<std::size_t>(static_cast<char*>(p) - page_address(first));
  }

  bool contains(const void* p) const noexcept {
    auto* c = static_cast<const char*>(p);
    return c >= _data && c < _data_end;
  }

  void* allocate_huge(std::size_t alignment, std::size_t size) noexcept {
    std::size_t header = alignment > 64 ? alignment : 64;
    std::size_t slack = alignment > page_size ? alignment : 0;
    std::size_t mapping_size = (size + header + slack + page_size - 1) & ~(page_size - 1);
    std::size_t pages = mapping_size >> page_bits;
    if (mapping_size < size || !within_limit(pages)) return fail();
    void* m = ::mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return fail();
    ::madvise(m, mapping_size, MADV_HUGEPAGE);  // as commit_to()
    bind_to_node(static_cast<char*>(m), mapping_size);
    auto start = reinterpret_cast<std::uintptr_t>(m) + header;
    if (alignment > 16) start = (start + alignment - 1) & ~(alignment - 1);
    auto* h = reinterpret_cast<huge_header*>(start - sizeof(huge_header));
    h->user = reinterpret_cast<void*>(start);
    h->mapping = m;
    h->mapping_size = mapping_size;
    h->usable = mapping_size - (start - reinterpret_cast<std::uintptr_t>(m));
    h->arena = static_cast<int>(_index);
    register_huge(h);
    _pages_held += pages;
    _stats.mallocs++;
    _stats.bytes_in_use += h->usable;
    return reinterpret_cast<void*>(start);
  }

  // REQUIRES: p is a live huge allocation of this arena (checked by free()).
  [[gnu::noinline]] void free_huge(void* p) noexcept {
    auto* h = reinterpret_cast<huge_header*>(static_cast<char*>(p) - sizeof(huge_header));
    unregister_huge(h);
    _pages_held -= h->mapping_size >> page_bits;
    _stats.frees++;
    _stats.bytes_in_use -= h->usable;
    ::munmap(h->mapping, h->mapping_size);
  }

  bool is_live(void* p) const noexcept {
    std::size_t page = page_of(p);
    if (page >= _top) return false;
    page_kind k = _meta[page].kind;
    return k == page_kind::small || k == page_kind::large;
  }

  // From another thread: queue `p` back to this arena.
  void push_remote(free_object* first, free_object* last, std::size_t count) noexcept {
    free_object* head = _remote.load(std::memory_order_relaxed);
    do {
      last->next = head;
    } while (!_remote.compare_exchange_weak(head, first, std::memory_order_release,
                                            std::memory_order_relaxed));
    (void)count;
  }

  [[gnu::noinline]] std::size_t drain_remote() noexcept {
    if (_remote.load(std::memory_order_relaxed) == nullptr) return 0;
    free_object* o = _remote.exchange(nullptr, std::memory_order_acquire);
    std::size_t n = 0;
    while (o != nullptr) {
      free_object* next = o->next;
      free_local(o);
      o = next;
      ++n;
    }
    _stats.cross_shard_frees += n;
    return n;
  }

  void set_limit(std::size_t bytes) noexcept {
    _limit_pages = bytes == 0 ? 0 : (bytes + page_size - 1) >> page_bits;
    _stats.limit_bytes = bytes;
  }
  void set_numa_node(int node) noexcept { _numa_node = node; }
  void set_reclaimer(reclaimer fn, void* context) noexcept {
    _reclaimer = fn;
    _reclaimer_context = context;
  }
  std::uint64_t reclaimer_calls() const noexcept { return _reclaimer_calls; }

  int numa_node() const noexcept { return _numa_node; }

  allocator_stats stats() const noexcept {
    allocator_stats s = _stats;
    // Small objects are counted per class on the hot path; add them up.
    for (unsigned c = 0; c < class_count; ++c) {
      s.mallocs += _small_allocs[c];
      s.frees += _small_frees[c];
      s.bytes_in_use += (_small_allocs[c] - _small_frees[c]) * size_of_class(c);
    }
    std::size_t held = _pages_held << page_bits;
    s.bytes_free = held > s.bytes_in_use ? held - s.bytes_in_use : 0;
    return s;
  }

  void* fail() noexcept {
    _stats.failed_allocations++;
    return nullptr;
  }

  bool initialized() const noexcept { return _data != nullptr; }

 private:
  // Whether `pages` more fit under the limit; at the limit, memory other
  // shards freed for this arena comes back first (it may be what makes
  // room); then the reclaimer, if one is installed and not running already.
  bool within_limit(std::size_t pages) noexcept {
    if (_limit_pages == 0 || _pages_held + pages <= _limit_pages) return true;
    if (_remote.load(std::memory_order_relaxed) != nullptr) {
      drain_remote();
      if (_pages_held + pages <= _limit_pages) return true;
    }
    if (_reclaimer == nullptr || _reclaiming) return false;
    _reclaiming = true;
    _reclaimer_calls++;
    _reclaimer((_pages_held + pages - _limit_pages) << page_bits, _reclaimer_context);
    _reclaiming = false;
    return _pages_held + pages <= _limit_pages;
  }

  static constexpr std::size_t npos = ~std::size_t{0};

  std::size_t page_of(const void* p) const noexcept {
    return static_cast<std::size_t>(static_cast<const char*>(p) - _data) >> page_bits;
  }
  char* page_address(std::size_t page) const noexcept { return _data + (page << page_bits); }

  [[gnu::noinline]] void* refill(unsigned c) noexcept {
    drain_remote();
    if (free_object* o = _free[c]) {
      _free[c] = o->next;
      ++_small_allocs[c];
      return o;
    }
    std::size_t size = size_of_class(c);
    if (_bump[c] == nullptr || _bump[c] + size > _bump_end[c]) {
      std::size_t pages = pool_pages_of(c);
      std::size_t first = allocate_pages(pages);
      if (first == npos) return fail();
      for (std::size_t i = 0; i < pages; ++i) {
        page_info& pi = _meta[first + i];
        pi.kind = page_kind::small;
        pi.size_class = static_cast<std::uint8_t>(c);
        pi.span_pages = 0;
        pi.head_offset = 0;
      }
      _bump[c] = page_address(first);
      _bump_end[c] = _bump[c] + (pages << page_bits);
    }
    void* p = _bump[c];
    _bump[c] += size;
    ++_small_allocs[c];
    return p;
  }

  // Makes [0, pages) of the data (and its metadata) readable and writable.
  bool commit_to(std::size_t pages) noexcept {
    if (pages <= _committed_pages) return true;
    std::size_t step_pages = commit_step >> page_bits;
    std::size_t target = (pages + step_pages - 1) / step_pages * step_pages;
    if (target > data_pages()) target = data_pages();
    if (target < pages) return false;
    char* from = page_address(_committed_pages);
    std::size_t bytes = (target - _committed_pages) << page_bits;
    if (::mprotect(from, bytes, PROT_READ | PROT_WRITE) != 0) return false;
    // Transparent huge pages where the kernel gives them only on request
    // ("madvise", Debian's default): a shard's memory is reached at
    // random (a cache's index and items), and 2 MiB pages spare it most
    // TLB misses. Advice only: without it the pages stay 4 KiB.
    ::madvise(from, bytes, MADV_HUGEPAGE);
    bind_to_node(from, bytes);
    // The page_info entries for those pages.
    auto meta_from = reinterpret_cast<std::uintptr_t>(_meta + _committed_pages) & ~(page_size - 1);
    auto meta_to = (reinterpret_cast<std::uintptr_t>(_meta + target) + page_size - 1) & ~(page_size - 1);
    if (::mprotect(reinterpret_cast<void*>(meta_from), meta_to - meta_from, PROT_READ | PROT_WRITE) != 0) {
      return false;
    }
    _committed_pages = target;
    return true;
  }

  void bind_to_node(char* from, std::size_t bytes) noexcept {
    if (_numa_node < 0) return;
    unsigned long mask[16] = {};
    if (_numa_node >= static_cast<int>(sizeof(mask) * 8)) return;
    mask[_numa_node / 64] |= 1ul << (_numa_node % 64);
    // MPOL_PREFERRED (1): the shard's node first, others if it is full.
    ::syscall(SYS_mbind, from, bytes, 1, mask, sizeof(mask) * 8, 0);
  }

  void bucket_insert(std::size_t first, std::size_t pages) noexcept {
    unsigned b = floor_log2(pages);
    auto* s = reinterpret_cast<free_span*>(page_address(first));
    s->prev = nullptr;
    s->next = _buckets[b];
    if (s->next != nullptr) s->next->prev = s;
    _buckets[b] = s;
    page_info& head = _meta[first];
    page_info& tail = _meta[first + pages - 1];
    head.kind = tail.kind = page_kind::free;
    head.span_pages = tail.span_pages = static_cast<std::uint32_t>(pages);
    _pages_free += pages;
  }

  void bucket_remove(std::size_t first, std::size_t pages) noexcept {
    unsigned b = floor_log2(pages);
    auto* s = reinterpret_cast<free_span*>(page_address(first));
    if (s->prev != nullptr) {
      s->prev->next = s->next;
    } else {
      _buckets[b] = s->next;
    }
    if (s->next != nullptr) s->next->prev = s->prev;
    _pages_free -= pages;
  }

  std::size_t allocate_pages(std::size_t pages) noexcept {
    if (!within_limit(pages)) return npos;
    // First fit among the free spans, smallest bucket that can hold it.
    for (unsigned b = floor_log2(pages); b < span_buckets; ++b) {
      for (free_span* s = _buckets[b]; s != nullptr; s = s->next) {
        std::size_t first = page_of(s);
        std::size_t have = _meta[first].span_pages;
        if (have < pages) continue;
        bucket_remove(first, have);
        if (have > pages) bucket_insert(first + pages, have - pages);
        _pages_held += pages;
        return first;
      }
    }
    // Fresh pages at the top.
    if (_top + pages > data_pages()) return npos;
    if (!commit_to(_top + pages)) return npos;
    std::size_t first = _top;
    _top += pages;
    _pages_held += pages;
    return first;
  }

  void free_pages(std::size_t first, std::size_t pages) noexcept {
    _pages_held -= pages;
    // Coalesce with free neighbours.
    if (first > 0 && _meta[first - 1].kind == page_kind::free) {
      std::size_t left = _meta[first - 1].span_pages;
      bucket_remove(first - left, left);
      first -= left;
      pages += left;
    }
    std::size_t next = first + pages;
    if (next < _top && _meta[next].kind == page_kind::free) {
      std::size_t right = _meta[next].span_pages;
      bucket_remove(next, right);
      pages += right;
    }
    bucket_insert(first, pages);
  }

  unsigned _index = 0;
  std::size_t _data_pages = 0;
  page_info* _meta = nullptr;
  char* _data = nullptr;
  char* _data_end = nullptr;
  free_object* _free[class_count] = {};
  char* _bump[class_count] = {};
  char* _bump_end[class_count] = {};
  free_span* _buckets[span_buckets] = {};
  std::size_t _top = 0;              // pages ever handed out
  std::size_t _committed_pages = 0;  // pages readable and writable
  std::size_t _pages_held = 0;       // pages out of the page allocator (and huge)
  std::size_t _pages_free = 0;       // pages in the free buckets
  std::size_t _limit_pages = 0;      // 0: no limit
  int _numa_node = -1;
  allocator_stats _stats;  // large and huge objects; small ones below
  reclaimer _reclaimer = nullptr;  // see set_reclaimer()
  void* _reclaimer_context = nullptr;
  bool _reclaiming = false;
  std::uint64_t _reclaimer_calls = 0;
  std::uint64_t _small_allocs[class_count] = {};
  std::uint64_t _small_frees[class_count] = {};
  alignas(64) std::atomic<free_object*> _remote{nullptr};  // frees sent back by others
};

arena arenas[arena_count];
std::mutex fallback_mutex;  // guards arenas[fallback_index]

// A reservation of address space cut into equal slots, one arena each: the
// arena that owns a pointer is its offset's slot. Published by `base`
// (release) after the rest is written.
struct region {
  std::atomic<char*> base{nullptr};
  std::size_t slot_bits = 0;
  unsigned slots = 0;
  unsigned first_arena = 0;

  arena* arena_of(const void* p) const noexcept {
    char* b = base.load(std::memory_order_acquire);
    if (b == nullptr || static_cast<const char*>(p) < b) return nullptr;
    auto offset = static_cast<std::size_t>(static_cast<const char*>(p) - b);
    if (offset >= (std::size_t{slots} << slot_bits)) return nullptr;
    return &arenas[first_arena + (offset >> slot_bits)];
  }
};

region shard_region;     // arenas 0..slots-1, reserved by configure() or the first bind
region fallback_region;  // the fallback arena, reserved at first use
std::mutex region_mutex;   // reserving either

thread_local arena* this_thread_arena = nullptr;

// A shard's frees of other arenas' memory, batched per owner.
constexpr std::size_t remote_batch_max = 32;
struct remote_batch {
  free_object* first = nullptr;
  free_object* last = nullptr;
  std::size_t count = 0;
};
thread_local remote_batch remote_batches[arena_count];
thread_local std::uint64_t remote_pending_mask[(arena_count + 63) / 64];

// The smallest power of two (as bits) at least `bytes`, within the arena
// bounds.
std::size_t bits_for(std::size_t bytes) noexcept {
  std::size_t bits = arena_bits_least;
  while (bits < arena_bits_most && (std::size_t{1} << bits) < bytes) ++bits;
  return bits;
}

// Reserves `slots` slots of 2^bits bytes (fewer bits where that does not
// fit, down to the least) for arenas first_arena.. and publishes `r`.
// REQUIRES: region_mutex held, r not yet reserved.
bool reserve(region& r, unsigned first_arena, unsigned slots, std::size_t bits) noexcept {
  for (; bits >= arena_bits_least; --bits) {
    void* base = ::mmap(nullptr, std::size_t{slots} << bits, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) continue;
    for (unsigned i = 0; i < slots; ++i) {
      arenas[first_arena + i].init(first_arena + i, static_cast<char*>(base) + (std::size_t{i} << bits), bits);
    }
    r.slot_bits = bits;
    r.slots = slots;
    r.first_arena = first_arena;
    r.base.store(static_cast<char*>(base), std::memory_order_release);
    return true;
  }
  return false;
}

void ensure_fallback_region() noexcept {
  if (fallback_region.base.load(std::memory_order_acquire) != nullptr) return;
  std::lock_guard lock(region_mutex);
  if (fallback_region.base.load(std::memory_order_relaxed) != nullptr) return;
  if (!reserve(fallback_region, fallback_index, 1, arena_bits_most)) {
    die("reef allocator: cannot reserve its address space\n");
  }
}

// Reserves the shard arenas with what configure() says, or, when nothing
// configured them, the defaults. REQUIRES: region_mutex held.
bool ensure_shard_region_locked(unsigned shards, std::size_t limit_per_shard) noexcept {
  if (shard_region.base.load(std::memory_order_relaxed) != nullptr) return true;
  std::size_t bits = limit_per_shard == 0 ? arena_bits_most : bits_for(2 * limit_per_shard);
  return reserve(shard_region, 0, shards, bits);
}

unsigned default_shards() noexcept {
  long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
  unsigned n = cpus > 0 ? static_cast<unsigned>(cpus) : 1;
  if (n < default_shard_slots) n = default_shard_slots;
  return n > max_shards ? max_shards : n;
}

// The arena holding `p`, or nullptr for a pointer outside the reservations.
inline arena* arena_of(const void* p) noexcept {
  if (arena* a = shard_region.arena_of(p)) return a;
  return fallback_region.arena_of(p);
}

// The fallback arena, reserved. REQUIRES: fallback_mutex held (to use it).
arena& fallback_arena() noexcept {
  ensure_fallback_region();
  return arenas[fallback_index];
}

arena& home_arena() noexcept {
  if (this_thread_arena != nullptr) return *this_thread_arena;
  return fallback_arena();
}

void* allocate_in(arena& a, std::size_t alignment, std::size_t size) noexcept {
  if (size == 0) size = 1;
  if (size >= huge_min) return a.allocate_huge(alignment, size);
  if (alignment <= 16) {
    if (size <= small_max) return a.allocate_small(size);
    return a.allocate_large(size, page_size);
  }
  if (size <= small_max && alignment <= page_size) return a.allocate_aligned_small(alignment, size);
  return a.allocate_large(size, alignment);
}

void flush_batch(unsigned owner) noexcept {
  remote_batch& b = remote_batches[owner];
  if (b.count == 0) return;
  arenas[owner].push_remote(b.first, b.last, b.count);
  b = remote_batch{};
  remote_pending_mask[owner / 64] &= ~(std::uint64_t{1} << (owner % 64));
}

void free_remote(arena& owner, void* p) noexcept {
  if (owner.index() == fallback_index) {
    std::lock_guard lock(fallback_mutex);
    owner.free_local(p);
    return;
  }
  auto* o = static_cast<free_object*>(p);
  o->next = nullptr;
  if (this_thread_arena == nullptr) {
    // Not a shard: no poller to flush a batch; send it at once.
    owner.push_remote(o, o, 1);
    return;
  }
  unsigned i = owner.index();
  remote_batch& b = remote_batches[i];
  if (b.count == 0) {
    b.first = b.last = o;
    remote_pending_mask[i / 64] |= std::uint64_t{1} << (i % 64);
  } else {
    o->next = b.first;
    b.first = o;
  }
  if (++b.count >= remote_batch_max) flush_batch(i);
}

}  // namespace

const char* configure(const allocator_config& config) noexcept {
  if (config.shards == 0 || config.shards > max_shards) return "the number of shards is not 1 to max_shards";
  {
    std::lock_guard lock(region_mutex);
    if (shard_region.base.load(std::memory_order_relaxed) != nullptr) {
      if (config.shards > shard_region.slots) return "the arenas were set up for fewer shards (configure first)";
    } else if (!ensure_shard_region_locked(config.shards, config.limit_per_shard_bytes)) {
      return "cannot reserve address space for that many shards";
    }
  }
  bool single_node = true;
  for (int node : config.numa_node_of_shard) {
    if (node != config.numa_node_of_shard.front()) single_node = false;
  }
  for (unsigned s = 0; s < config.shards; ++s) {
    arenas[s].set_limit(config.limit_per_shard_bytes);
    if (!single_node && s < config.numa_node_of_shard.size()) {
      arenas[s].set_numa_node(config.numa_node_of_shard[s]);
    }
  }
  return nullptr;
}

void set_limit(unsigned shard, std::size_t bytes) noexcept {
  if (shard < max_shards) arenas[shard].set_limit(bytes);
}

void bind_this_thread_to_shard(unsigned shard) noexcept {
  if (shard_region.base.load(std::memory_order_acquire) == nullptr) {
    std::lock_guard lock(region_mutex);
    ensure_shard_region_locked(std::max(default_shards(), std::min(shard + 1, max_shards)), 0);
  }
  if (shard >= shard_region.slots) {
    this_thread_arena = nullptr;  // beyond the arenas set up: the fallback
    return;
  }
  this_thread_arena = &arenas[shard];
  this_thread_arena->drain_remote();
}

std::size_t shard_arena_bytes() noexcept {
  if (shard_region.base.load(std::memory_order_acquire) == nullptr) return 0;
  return std::size_t{1} << shard_region.slot_bits;
}

unsigned shard_arenas() noexcept {
  if (shard_region.base.load(std::memory_order_acquire) == nullptr) return 0;
  return shard_region.slots;
}

void unbind_this_thread() noexcept {
  // A reclaimer is the thread's (its context may die with it).
  if (this_thread_arena != nullptr) this_thread_arena->set_reclaimer(nullptr, nullptr);
  flush_remote_frees();
  this_thread_arena = nullptr;
}

int this_thread_shard() noexcept {
  return this_thread_arena != nullptr ? static_cast<int>(this_thread_arena->index()) : -1;
}

namespace {

// Everything allocate() does but the common case.
[[gnu::noinline]] void* allocate_slow(std::size_t size) noexcept {
  arena* a = this_thread_arena;
  if (a != nullptr) {
    if (size <= small_max) return a->allocate_small(size);
    return allocate_in(*a, 16, size);
  }
  ensure_fallback_region();
  std::lock_guard lock(fallback_mutex);
  return allocate_in(home_arena(), 16, size);
}

}  // namespace

void* allocate(std::size_t size) noexcept {
  if (size > size_max) [[unlikely]] return nullptr;
  arena* a = this_thread_arena;
  if (a != nullptr && size <= small_max) [[likely]] {
    if (void* p = a->try_allocate_small(size)) return p;
  }
  return allocate_slow(size);
}

void* allocate_aligned(std::size_t alignment, std::size_t size) noexcept {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > alignment_max) {
    return nullptr;
  }
  if (size > size_max) return nullptr;
  arena* a = this_thread_arena;
  if (a != nullptr) return allocate_in(*a, alignment, size);
  ensure_fallback_region();
  std::lock_guard lock(fallback_mutex);
  return allocate_in(home_arena(), alignment, size);
}

namespace {

// Everything free() does but the common case.
[[gnu::noinline]] void free_slow(void* p) noexcept {
  if (p == nullptr) return;
  arena* owner = arena_of(p);
  if (owner == nullptr) {
    // A huge allocation: its header names the owner.
    huge_header* h = find_huge(p);
    if (h == nullptr) die("reef allocator: free() of a pointer it did not hand out\n");
    owner = &arenas[h->arena];
  }
  if (owner == this_thread_arena) {
    owner->free_local(p);
    return;
  }
  if (this_thread_arena == nullptr && owner->index() == fallback_index) {
    std::lock_guard lock(fallback_mutex);
    owner->free_local(p);
    return;
  }
  free_remote(*owner, p);
}

}  // namespace

void free(void* p) noexcept {
  arena* a = this_thread_arena;
  if (a != nullptr && a->try_free_small(p)) [[likely]] return;
  free_slow(p);
}

std::size_t usable_size(void* p) noexcept {
  if (p == nullptr) return 0;
  arena* owner = arena_of(p);
  if (owner == nullptr) {
    huge_header* h = find_huge(p);
    return h != nullptr ? h->usable : 0;
  }
  // Page metadata of a live object is stable: any thread may read it.
  return owner->usable_at(p);
}

void* reallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return allocate(size);
  if (size == 0) {
    free(p);
    return nullptr;
  }
  std::size_t have = usable_size(p);
  // Keep the block when it fits and is not much too big.
  if (size <= have && size >= have / 2) return p;
  void* q = allocate(size);
  if (q == nullptr) return nullptr;  // p stays valid, as realloc promises
  std::memcpy(q, p, size < have ? size : have);
  free(p);
  return q;
}

bool owns(const void* p) noexcept {
  if (p == nullptr) return false;
  if (arena* a = arena_of(p)) return a->is_live(const_cast<void*>(p));
  return find_huge(p) != nullptr;
}

int owner_shard(const void* p) noexcept {
  arena* a = arena_of(p);
  if (a == nullptr || a->index() == fallback_index) return -1;
  return static_cast<int>(a->index());
}

std::size_t drain_remote_frees() noexcept {
  arena* a = this_thread_arena;
  if (a == nullptr) return 0;
  return a->drain_remote();
}

void flush_remote_frees() noexcept {
  for (unsigned w = 0; w < (arena_count + 63) / 64; ++w) {
    while (std::uint64_t m = remote_pending_mask[w]) {
      unsigned bit = static_cast<unsigned>(__builtin_ctzll(m));
      flush_batch(w * 64 + bit);
    }
  }
}

bool set_reclaimer(reclaimer fn, void* context) noexcept {
  if (this_thread_arena == nullptr) return false;
  this_thread_arena->set_reclaimer(fn, context);
  return true;
}

std::uint64_t reclaimer_calls() noexcept {
  return this_thread_arena != nullptr ? this_thread_arena->reclaimer_calls() : 0;
}

allocator_stats local_stats() noexcept {
  if (this_thread_arena != nullptr) return this_thread_arena->stats();
  ensure_fallback_region();
  std::lock_guard lock(fallback_mutex);
  return home_arena().stats();
}

}  // namespace reef::memory
