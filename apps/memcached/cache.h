// One shard's part of the cache: its items in an LSA region (memory/lsa.h)
// that compacts instead of fragmenting, an index by key, an LRU list, and
// memcached's command semantics (expiry, CAS, flush_all, incr/decr, the
// meta commands' flags). It runs parsed requests (protocol.h) and appends
// memcached's reply text.
//
//   cache c({.memory_bytes = 64 << 20});
//   c.set_clock(unix_ms);                // the server sets it before each command
//   std::string reply;
//   c.execute(set_request, "value", reply);   // "STORED\r\n"
//
// Memory: the region holds at most memory_bytes (its segments and its
// large items); storing past that evicts from the LRU's cold end, after
// compaction has closed what holes it can. The index lives outside it (as
// memcached's hash table lives outside its slabs).
//
// Thread rules: a cache belongs to the shard that made it. Keys are spread
// over shards by shard_of(key_hash(key)); a request for a key runs on its
// shard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "apps/memcached/protocol.h"
#include "memory/lsa.h"

namespace reef::memcached {

/// The hash that places a key on a shard and in a shard's index.
std::uint64_t key_hash(std::string_view key) noexcept;
/// The shard of `hash` among `shards`.
inline unsigned shard_of(std::uint64_t hash, unsigned shards) noexcept {
  return static_cast<unsigned>(((hash >> 32) * shards) >> 32);
}

struct cache_config {
  /// The most the items take (this shard's share of -m), in bytes.
  std::size_t memory_bytes = 64 << 20;
  /// The largest item (-I): its key, value and bookkeeping.
  std::size_t item_size_max = 1 << 20;
};

/// memcached's statistics, as this shard counts them.
struct cache_stats {
  std::uint64_t cmd_get = 0, cmd_set = 0, cmd_flush = 0, cmd_touch = 0, cmd_meta = 0;
  std::uint64_t get_hits = 0, get_misses = 0, get_expired = 0, get_flushed = 0;
  std::uint64_t delete_hits = 0, delete_misses = 0;
  std::uint64_t incr_hits = 0, incr_misses = 0, decr_hits = 0, decr_misses = 0;
  std::uint64_t cas_hits = 0, cas_misses = 0, cas_badval = 0;
  std::uint64_t touch_hits = 0, touch_misses = 0;
  std::uint64_t store_too_large = 0, store_no_memory = 0;
  std::uint64_t curr_items = 0, total_items = 0;
  std::uint64_t bytes = 0;  // keys and values of the items held
  std::uint64_t evictions = 0, reclaimed = 0, expired_unfetched = 0, evicted_unfetched = 0;
  std::uint64_t limit_maxbytes = 0;
  std::uint64_t hash_bytes = 0;
  memory::lsa::region_stats region;

  cache_stats& operator+=(const cache_stats& o) noexcept;
};

class cache {
 public:
  explicit cache(cache_config config = {});
  ~cache();
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;

  /// The current time: wall-clock milliseconds since the epoch. Expiry
  /// times are given in seconds (relative up to 30 days, absolute beyond,
  /// as memcached) and kept to the millisecond: a TTL of 1 lives a second
  /// from its store, not until the clock's next second. The server sets it
  /// before each batch of commands.
  void set_clock(std::uint64_t unix_ms) noexcept {
    _now_ms = unix_ms;
    _now = static_cast<std::uint32_t>(unix_ms / 1000);
  }
  std::uint32_t now() const noexcept { return _now; }

  /// Whether an item of this key and value size may be stored at all.
  bool fits(std::size_t key_bytes, std::size_t value_bytes) const noexcept;

  /// Runs a single-key request (storage, incr/decr, delete, touch, and the
  /// meta commands) for req.keys[0]; `data` is a storage command's block
  /// without its "\r\n" (empty, with req.bytes still the length announced,
  /// for a block the server skipped as too large). Appends the reply
  /// (nothing under noreply).
  void execute(const request& req, std::string_view data, std::string& reply) {
    execute(req, req.keys.empty() ? 0 : key_hash(req.key()), data, reply);
  }
  /// The same, with the key's hash (key_hash(req.key())) at hand: the
  /// server has it from choosing the shard.
  void execute(const request& req, std::uint64_t hash, std::string_view data, std::string& reply);

  /// get/gets/gat/gats of one key: appends its VALUE lines, or nothing on a
  /// miss (the caller ends the reply with END).
  void retrieve(const request& req, std::string_view key, std::string& reply) {
    retrieve(req, key, key_hash(key), reply);
  }
  /// The same, with the key's hash (key_hash(key)) at hand.
  void retrieve(const request& req, std::string_view key, std::uint64_t hash, std::string& reply);

  /// For a multi-key get: starts loading the index slot of `hash`, then
  /// (once every key's slot is asked for) the item it leads to, so that
  /// the keys' cache misses overlap instead of following one another.
  void prefetch_slot(std::uint64_t hash) const noexcept { __builtin_prefetch(&_table[home(hash)]); }
  void prefetch_item(std::uint64_t hash) const noexcept {
    const slot& s = _table[home(hash)];
    if (s.object != nullptr) {
      __builtin_prefetch(s.object);
      __builtin_prefetch(reinterpret_cast<const char*>(s.object) + 64);
    }
  }

  /// flush_all: items stored before now + delay are gone from then on.
  void flush_all(std::int64_t delay) noexcept;

  /// Frees expired and flushed items among the next `slots` slots of the
  /// index; returns how many it freed. Bounded work for a periodic sweep.
  std::size_t sweep(std::size_t slots) noexcept;

  cache_stats stats() const noexcept;
  /// "stats reset": the counters start again (what is held stays).
  void reset_stats() noexcept;
  const cache_config& config() const noexcept { return _config; }

 private:
  struct item;
  struct slot {
    item* object;  // the region's owner pointer for the item
    std::uint64_t hash;
  };

  // An exptime as memcached takes it, as an absolute time in ms (0: never).
  std::uint64_t realtime(std::int64_t exptime) const noexcept;
  // What is left of an item's life, in whole seconds up (-1: forever).
  std::int64_t ttl_seconds(const item* it) const noexcept;
  bool live(const item* it) const noexcept;
  std::size_t home(std::uint64_t hash) const noexcept { return hash & (_capacity - 1); }
  // The slot holding `key`, or nullptr. Expired and flushed items found
  // are freed (and counted) and read as misses.
  slot* find(std::string_view key, std::uint64_t hash) noexcept;
  slot* find_raw(std::string_view key, std::uint64_t hash) noexcept;
  slot* slot_of(const item* it) noexcept;
  // Makes room in the index for one more (may evict: call before taking
  // any pointer).
  void reserve_one();
  // Allocates an item (may compact and evict; nothing found before stays
  // valid); nullptr when there is no room. Not linked anywhere yet.
  item* allocate_item(std::string_view key, std::size_t value_bytes) noexcept;
  // Puts `fresh` where `key` is (replacing what is there) and at the LRU's
  // hot end.
  void link(item* fresh, std::uint64_t hash) noexcept;
  void unlink(slot* s) noexcept;  // removes and frees its item
  void bump(item* it) noexcept;  // a use: marks it for a second chance
  void move_to_hot_end(item* it) noexcept;
  // Frees the LRU's coldest item, after sending (a bounded number of)
  // used ones back to the hot end; false when there is none.
  bool evict_one() noexcept;
  std::uint64_t next_cas() noexcept { return ++_cas; }

  enum class store_result : std::uint8_t { stored, not_stored, exists, not_found, no_memory };
  store_result store(command mode, std::string_view key, std::uint64_t hash, std::uint32_t flags, std::int64_t exptime,
                     std::string_view data, std::uint64_t compare_cas, bool invalidate, std::uint64_t* cas_out);
  enum class arithmetic_result : std::uint8_t { done, not_found, non_numeric, no_memory };
  arithmetic_result arithmetic(std::string_view key, std::uint64_t hash, bool incr, std::uint64_t delta, std::uint64_t* value_out,
                               item** item_out);
  void meta_get(const request& req, std::uint64_t hash, std::string& reply);
  void meta_set(const request& req, std::uint64_t hash, std::string_view data, std::string& reply);
  void meta_delete(const request& req, std::uint64_t hash, std::string& reply);
  void meta_arithmetic(const request& req, std::uint64_t hash, std::string& reply);
  void meta_debug(const request& req, std::uint64_t hash, std::string& reply);
  void append_key_flag(const request& req, std::string& reply);

  cache_config _config;
  memory::lsa::region _region;
  slot* _table = nullptr;
  std::size_t _capacity = 0;  // a power of two
  std::size_t _count = 0;
  std::size_t _sweep_cursor = 0;
  // The sentinel: _lru->next is the item stored (or given a second
  // chance) last, _lru->prev the next to evict, unless it was used since.
  item* _lru;
  std::uint64_t _cas = 0;
  std::uint64_t _now_ms = 0;
  std::uint32_t _now = 0;  // _now_ms in seconds
  // flush_all: items whose CAS is below _flush_cas are gone; and from
  // _oldest_live on (a delayed flush), so are items last stored or
  // fetched at or before it.
  std::uint64_t _flush_cas = 0;
  std::uint32_t _oldest_live = 0;
  cache_stats _stats;
};

}  // namespace reef::memcached
