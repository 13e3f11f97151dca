#include "apps/memcached/cache.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>

namespace reef::memcached {

namespace {

using memory::lsa::region;

// An item as it lies in the region: its bookkeeping, then its key, then
// its value with "\r\n" (so that a reply can take both at once).
struct item_header {
  item_header* prev;  // the LRU, a circle through the cache's sentinel
  item_header* next;
  std::uint64_t cas;
  std::uint64_t hash;
  std::uint64_t exptime;      // absolute, in ms on the cache's clock; 0: never
  std::uint32_t flags;
  std::uint32_t value_length; // without "\r\n"
  std::uint32_t time;         // last stored or fetched
  std::uint8_t key_length;
  std::uint8_t bits;
};

constexpr std::uint8_t fetched_bit = 1;
constexpr std::uint8_t stale_bit = 2;       // md I: serve, but ask for a recache
constexpr std::uint8_t token_sent_bit = 4;  // a client was told it won the recache
constexpr std::uint8_t used_bit = 8;        // used since it last came to the LRU's hot end
// Used items that an eviction sends back to the hot end before it takes
// the cold end's item whatever its mark (the work of one eviction stays
// bounded).
constexpr unsigned second_chances_max = 32;

// Moves an item: its bytes, then its LRU neighbours' links (the region
// updates its index slot, the owner).
memory::lsa::migrator_id item_migrator() noexcept {
  static const memory::lsa::migrator_id id = memory::lsa::register_migrator(memory::lsa::migrator{
      [](void* from, void* to, std::size_t size) noexcept {
        std::memcpy(to, from, size);
        auto* it = static_cast<item_header*>(to);
        it->prev->next = it;
        it->next->prev = it;
      },
      [](void*, std::size_t) noexcept {},
  });
  return id;
}

constexpr std::uint32_t relative_time_max = 60 * 60 * 24 * 30;  // memcached's REALTIME_MAXDELTA
constexpr std::size_t initial_capacity = 1024;

void append_number(std::string& out, std::uint64_t v) {
  char text[24];
  auto end = std::to_chars(text, text + sizeof(text), v).ptr;
  out.append(text, static_cast<std::size_t>(end - text));
}

void append_signed(std::string& out, std::int64_t v) {
  char text[24];
  auto end = std::to_chars(text, text + sizeof(text), v).ptr;
  out.append(text, static_cast<std::size_t>(end - text));
}

std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

}  // namespace

struct cache::item : item_header {
  char* key_data() noexcept { return reinterpret_cast<char*>(this) + sizeof(item_header); }
  const char* key_data() const noexcept { return reinterpret_cast<const char*>(this) + sizeof(item_header); }
  std::string_view key() const noexcept { return {key_data(), key_length}; }
  char* value_data() noexcept { return key_data() + key_length; }
  std::string_view value() const noexcept { return {key_data() + key_length, value_length}; }
  // The value with its "\r\n".
  std::string_view value_line() const noexcept { return {key_data() + key_length, value_length + 2u}; }
  static std::size_t bytes_for(std::size_t key_bytes, std::size_t value_bytes) noexcept {
    return sizeof(item_header) + key_bytes + value_bytes + 2;
  }
  item* hotter() const noexcept { return static_cast<item*>(next); }
  item* colder() const noexcept { return static_cast<item*>(prev); }
};

std::uint64_t key_hash(std::string_view key) noexcept {
  // A multiply-mix over 8-byte words, seeded with the length.
  constexpr std::uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull, k2 = 0x8ebc6af09c88c6e3ull;
  const char* p = key.data();
  std::size_t n = key.size();
  std::uint64_t h = k0 ^ (n * k2);
  while (n >= 8) {
    h = mix(h ^ load64(p), k1);
    p += 8;
    n -= 8;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  h = mix(h ^ tail, k1 ^ n);
  return mix(h, k2);
}

cache_stats& cache_stats::operator+=(const cache_stats& o) noexcept {
  cmd_get += o.cmd_get;
  cmd_set += o.cmd_set;
  cmd_flush += o.cmd_flush;
  cmd_touch += o.cmd_touch;
  cmd_meta += o.cmd_meta;
  get_hits += o.get_hits;
  get_misses += o.get_misses;
  get_expired += o.get_expired;
  get_flushed += o.get_flushed;
  delete_hits += o.delete_hits;
  delete_misses += o.delete_misses;
  incr_hits += o.incr_hits;
  incr_misses += o.incr_misses;
  decr_hits += o.decr_hits;
  decr_misses += o.decr_misses;
  cas_hits += o.cas_hits;
  cas_misses += o.cas_misses;
  cas_badval += o.cas_badval;
  touch_hits += o.touch_hits;
  touch_misses += o.touch_misses;
  store_too_large += o.store_too_large;
  store_no_memory += o.store_no_memory;
  curr_items += o.curr_items;
  total_items += o.total_items;
  bytes += o.bytes;
  evictions += o.evictions;
  reclaimed += o.reclaimed;
  expired_unfetched += o.expired_unfetched;
  evicted_unfetched += o.evicted_unfetched;
  limit_maxbytes += o.limit_maxbytes;
  hash_bytes += o.hash_bytes;
  region.segments += o.region.segments;
  region.live_bytes += o.region.live_bytes;
  region.free_bytes += o.region.free_bytes;
  region.large_bytes += o.region.large_bytes;
  region.objects += o.region.objects;
  region.compactions += o.region.compactions;
  region.objects_moved += o.region.objects_moved;
  region.evictions += o.region.evictions;
  region.segments_released += o.region.segments_released;
  region.failed_allocations += o.region.failed_allocations;
  return *this;
}

cache::cache(cache_config config)
    : _config(config), _region(memory::lsa::region_config{.bytes_max = config.memory_bytes}), _lru(new item{}) {
  _lru->prev = _lru->next = _lru;
  _capacity = initial_capacity;
  _table = new slot[_capacity]();
  _stats.limit_maxbytes = config.memory_bytes;
  _region.set_evictor([this] { return evict_one(); });
}

cache::~cache() {
  // The items go before the index: the region would empty their owners,
  // the index's slots.
  _region.set_evictor(nullptr);
  for (std::size_t i = 0; i < _capacity; ++i) {
    if (_table[i].object != nullptr) _region.free(_table[i].object);
  }
  delete[] _table;
  delete _lru;
}

bool cache::fits(std::size_t key_bytes, std::size_t value_bytes) const noexcept {
  // -I, and what the region can hold beside its working segments (an item
  // past that would evict everything and still not fit).
  const std::size_t cap = std::max(_config.memory_bytes, memory::lsa::bytes_max_min);
  const std::size_t room = cap - 2 * memory::lsa::segment_bytes - 64;
  return item::bytes_for(key_bytes, value_bytes) <= std::min(_config.item_size_max, room);
}

std::uint64_t cache::realtime(std::int64_t exptime) const noexcept {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;  // already gone
  if (exptime > relative_time_max) {
    // An absolute time; one already past is gone at once.
    if (exptime <= static_cast<std::int64_t>(_now)) return 1;
    return static_cast<std::uint64_t>(exptime) * 1000;
  }
  return _now_ms + static_cast<std::uint64_t>(exptime) * 1000;
}

std::int64_t cache::ttl_seconds(const item* it) const noexcept {
  if (it->exptime == 0) return -1;
  if (it->exptime <= _now_ms) return 0;
  return static_cast<std::int64_t>((it->exptime - _now_ms + 999) / 1000);
}

bool cache::live(const item* it) const noexcept {
  if (it->exptime != 0 && it->exptime <= _now_ms) return false;
  if (it->cas < _flush_cas) return false;
  return _oldest_live == 0 || _oldest_live > _now || it->time > _oldest_live;
}

cache::slot* cache::find_raw(std::string_view key, std::uint64_t hash) noexcept {
  for (std::size_t i = home(hash);; i = (i + 1) & (_capacity - 1)) {
    slot& s = _table[i];
    if (s.object == nullptr) return nullptr;
    if (s.hash == hash && s.object->key() == key) return &s;
  }
}

cache::slot* cache::find(std::string_view key, std::uint64_t hash) noexcept {
  slot* s = find_raw(key, hash);
  if (s == nullptr || live(s->object)) return s;
  const bool expired = s->object->exptime != 0 && s->object->exptime <= _now_ms;
  if (expired) {
    ++_stats.get_expired;
    if (!(s->object->bits & fetched_bit)) ++_stats.expired_unfetched;
  } else {
    ++_stats.get_flushed;
  }
  ++_stats.reclaimed;
  unlink(s);
  return nullptr;
}

cache::slot* cache::slot_of(const item* it) noexcept {
  for (std::size_t i = home(it->hash);; i = (i + 1) & (_capacity - 1)) {
    if (_table[i].object == it) return &_table[i];
    if (_table[i].object == nullptr) return nullptr;
  }
}

void cache::reserve_one() {
  if ((_count + 1) * 4 <= _capacity * 3) return;
  // The new table first: its allocation may evict, which edits the old.
  const std::size_t capacity = _capacity * 2;
  slot* fresh = new slot[capacity]();
  memory::lsa::region::reclaim_lock pin(_region);
  slot* old = _table;
  const std::size_t old_capacity = _capacity;
  _table = fresh;
  _capacity = capacity;
  for (std::size_t i = 0; i < old_capacity; ++i) {
    if (old[i].object == nullptr) continue;
    std::size_t j = home(old[i].hash);
    while (_table[j].object != nullptr) j = (j + 1) & (_capacity - 1);
    _table[j] = old[i];
    region::owner_moved(_table[j].object, reinterpret_cast<void**>(&_table[j].object));
  }
  delete[] old;
}

cache::item* cache::allocate_item(std::string_view key, std::size_t value_bytes) noexcept {
  void* p = _region.allocate(item::bytes_for(key.size(), value_bytes), item_migrator(), nullptr);
  if (p == nullptr) return nullptr;
  auto* it = static_cast<item*>(p);
  *static_cast<item_header*>(it) = item_header{};
  it->key_length = static_cast<std::uint8_t>(key.size());
  it->value_length = static_cast<std::uint32_t>(value_bytes);
  std::memcpy(it->key_data(), key.data(), key.size());
  char* end = it->value_data() + value_bytes;
  end[0] = '\r';
  end[1] = '\n';
  it->time = _now;
  it->cas = next_cas();
  return it;
}

void cache::link(item* fresh, std::uint64_t hash) noexcept {
  fresh->hash = hash;
  slot* s = find_raw(fresh->key(), hash);
  if (s != nullptr) {
    // Replacing: the old item goes, the new one takes its slot.
    item* old = s->object;
    _stats.bytes -= old->key_length + old->value_length;
    old->prev->next = old->next;
    old->next->prev = old->prev;
    _region.free(old);
  } else {
    std::size_t i = home(hash);
    while (_table[i].object != nullptr) i = (i + 1) & (_capacity - 1);
    s = &_table[i];
    s->hash = hash;
    ++_count;
  }
  s->object = fresh;
  region::owner_moved(fresh, reinterpret_cast<void**>(&s->object));
  fresh->prev = _lru;
  fresh->next = _lru->next;
  _lru->next->prev = fresh;
  _lru->next = fresh;
  _stats.bytes += fresh->key_length + fresh->value_length;
  ++_stats.total_items;
}

void cache::unlink(slot* s) noexcept {
  item* it = s->object;
  it->prev->next = it->next;
  it->next->prev = it->prev;
  _stats.bytes -= it->key_length + it->value_length;
  _region.free(it);
  --_count;
  // Backward-shift deletion: later entries of the run move up so that
  // every probe still finds them.
  std::size_t i = static_cast<std::size_t>(s - _table);
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & (_capacity - 1);
    if (_table[j].object == nullptr) break;
    const std::size_t k = home(_table[j].hash);
    // Entry j may move to i if its home is not in (i, j] (cyclically).
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    _table[i] = _table[j];
    region::owner_moved(_table[i].object, reinterpret_cast<void**>(&_table[i].object));
    i = j;
  }
  _table[i] = slot{};
}

// A use only marks the item: moving it to the LRU's hot end now would
// touch both its neighbours, two more cache misses on every hit. The
// eviction moves it instead, if it comes to the cold end marked and still
// live (a second chance; memcached's LRU also spares the items used since
// they came in, if by other means).
void cache::bump(item* it) noexcept {
  it->bits |= fetched_bit | used_bit;
  it->time = _now;
}

void cache::move_to_hot_end(item* it) noexcept {
  if (_lru->next == it) return;
  it->prev->next = it->next;
  it->next->prev = it->prev;
  it->prev = _lru;
  it->next = _lru->next;
  _lru->next->prev = it;
  _lru->next = it;
}

bool cache::evict_one() noexcept {
  if (_lru->prev == _lru) return false;
  item* victim = _lru->colder();
  for (unsigned n = 0; n < second_chances_max && (victim->bits & used_bit) && live(victim); ++n) {
    victim->bits &= static_cast<std::uint8_t>(~used_bit);
    move_to_hot_end(victim);
    victim = _lru->colder();
  }
  slot* s = slot_of(victim);
  if (s == nullptr) return false;  // cannot happen: every linked item is indexed
  if (live(victim)) {
    ++_stats.evictions;
    if (!(victim->bits & fetched_bit)) ++_stats.evicted_unfetched;
  } else {
    ++_stats.reclaimed;
  }
  unlink(s);
  return true;
}

void cache::flush_all(std::int64_t delay) noexcept {
  ++_stats.cmd_flush;
  const std::uint64_t at = delay > 0 ? realtime(delay) : 0;  // 1 (past) or ms
  const std::uint32_t when = at >= 1000 ? static_cast<std::uint32_t>(at / 1000) - 1 : 0;
  if (when > _now) {
    // From then on, what was last stored or fetched before then.
    _oldest_live = when;
  } else {
    // Now: everything stored so far (by CAS, which also orders the items
    // of this very second).
    _oldest_live = 0;
    _flush_cas = _cas + 1;
  }
}

std::size_t cache::sweep(std::size_t slots) noexcept {
  memory::lsa::region::reclaim_lock pin(_region);
  std::size_t freed = 0;
  for (std::size_t n = 0; n < slots && n < _capacity; ++n) {
    if (_sweep_cursor >= _capacity) _sweep_cursor = 0;
    slot& s = _table[_sweep_cursor];
    if (s.object != nullptr && !live(s.object)) {
      if (!(s.object->bits & fetched_bit)) ++_stats.expired_unfetched;
      ++_stats.reclaimed;
      unlink(&s);  // (the next entry may have shifted here: look again)
      ++freed;
      continue;
    }
    ++_sweep_cursor;
  }
  return freed;
}

cache_stats cache::stats() const noexcept {
  cache_stats s = _stats;
  s.curr_items = _count;
  s.region = _region.stats();
  s.hash_bytes = _capacity * sizeof(slot);
  return s;
}

void cache::reset_stats() noexcept {
  cache_stats fresh;
  fresh.total_items = 0;
  fresh.bytes = _stats.bytes;
  fresh.limit_maxbytes = _stats.limit_maxbytes;
  _stats = fresh;
}

// --- Commands. ---------------------------------------------------------------

cache::store_result cache::store(command mode, std::string_view key, std::uint64_t hash, std::uint32_t flags, std::int64_t exptime,
                                 std::string_view data, std::uint64_t compare_cas, bool invalidate,
                                 std::uint64_t* cas_out) {
  const bool concat = mode == command::append || mode == command::prepend;
  // What the existing item decides, before allocating (which may evict it).
  {
    memory::lsa::region::reclaim_lock pin(_region);
    slot* s = find(key, hash);
    item* old = s != nullptr ? s->object : nullptr;
    if (mode == command::cas) {
      if (old == nullptr) {
        ++_stats.cas_misses;
        return store_result::not_found;
      }
      if (old->cas != compare_cas && !(invalidate && compare_cas < old->cas)) {
        ++_stats.cas_badval;
        return store_result::exists;
      }
    }
    if (mode == command::add && old != nullptr) {
      bump(old);  // as memcached: an add that finds the key refreshes it
      return store_result::not_stored;
    }
    if ((mode == command::replace || concat) && old == nullptr) return store_result::not_stored;
    if (concat && compare_cas != 0 && old->cas != compare_cas) return store_result::exists;
  }
  reserve_one();
  std::size_t value_bytes = data.size();
  if (concat) {
    memory::lsa::region::reclaim_lock pin(_region);
    slot* s = find(key, hash);
    if (s == nullptr) return store_result::not_stored;
    value_bytes += s->object->value_length;
  }
  if (!fits(key.size(), value_bytes)) {
    // (Only an append or prepend gets here: memcached answers NOT_STORED.)
    return store_result::not_stored;
  }
  item* fresh = allocate_item(key, value_bytes);
  memory::lsa::region::reclaim_lock pin(_region);
  if (fresh == nullptr) {
    ++_stats.store_no_memory;
    // As memcached: a set that cannot be stored drops the old value.
    if (mode == command::set) {
      if (slot* s = find_raw(key, hash)) unlink(s);
    }
    return store_result::no_memory;
  }
  // The allocation may have evicted the item it depends on.
  slot* s = find(key, hash);
  item* old = s != nullptr ? s->object : nullptr;
  const bool needs_old = mode == command::cas || mode == command::replace || concat;
  if ((needs_old && old == nullptr) || (concat && old->value_length + data.size() != value_bytes)) {
    _region.free(fresh);
    if (mode == command::cas) {
      ++_stats.cas_misses;
      return store_result::not_found;
    }
    return store_result::not_stored;
  }
  if (mode == command::cas) ++_stats.cas_hits;
  if (concat) {
    fresh->flags = old->flags;
    fresh->exptime = old->exptime;
    if (mode == command::append) {
      std::memcpy(fresh->value_data(), old->value().data(), old->value_length);
      std::memcpy(fresh->value_data() + old->value_length, data.data(), data.size());
    } else {
      std::memcpy(fresh->value_data(), data.data(), data.size());
      std::memcpy(fresh->value_data() + data.size(), old->value().data(), old->value_length);
    }
  } else {
    fresh->flags = flags;
    fresh->exptime = realtime(exptime);
    std::memcpy(fresh->value_data(), data.data(), data.size());
  }
  if (invalidate && mode == command::cas && old != nullptr && compare_cas < old->cas) fresh->bits |= stale_bit;
  if (cas_out != nullptr) *cas_out = fresh->cas;
  link(fresh, hash);
  return store_result::stored;
}

cache::arithmetic_result cache::arithmetic(std::string_view key, std::uint64_t hash, bool incr, std::uint64_t delta,
                                           std::uint64_t* value_out, item** item_out) {
  std::uint64_t result = 0;
  {
    memory::lsa::region::reclaim_lock pin(_region);
    slot* s = find(key, hash);
    if (s == nullptr) {
      ++(incr ? _stats.incr_misses : _stats.decr_misses);
      return arithmetic_result::not_found;
    }
    item* it = s->object;
    std::uint64_t value = 0;
    // memcached reads the value with its "\r\n", which counts as the
    // trailing whitespace strtoull allows.
    if (it->value_length == 0 || !parse_u64(it->value_line(), value)) return arithmetic_result::non_numeric;
    ++(incr ? _stats.incr_hits : _stats.decr_hits);
    result = incr ? value + delta : (delta > value ? 0 : value - delta);
    char text[24];
    const auto length = static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), result).ptr - text);
    *value_out = result;
    if (length <= it->value_length) {
      // In place, padded with spaces, as memcached does.
      std::memcpy(it->value_data(), text, length);
      std::memset(it->value_data() + length, ' ', it->value_length - length);
      it->cas = next_cas();
      bump(it);
      *item_out = it;
      return arithmetic_result::done;
    }
  }
  // Longer than the old value: a new item with the old one's flags.
  char text[24];
  const auto length = static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), result).ptr - text);
  reserve_one();
  item* fresh = allocate_item(key, length);
  memory::lsa::region::reclaim_lock pin(_region);
  if (fresh == nullptr) return arithmetic_result::no_memory;
  slot* s = find(key, hash);
  if (s == nullptr) {
    // Evicted to make room for its new value (counted as a hit above).
    _region.free(fresh);
    return arithmetic_result::not_found;
  }
  fresh->flags = s->object->flags;
  fresh->exptime = s->object->exptime;
  std::memcpy(fresh->value_data(), text, length);
  link(fresh, hash);
  *item_out = fresh;
  return arithmetic_result::done;
}

void cache::retrieve(const request& req, std::string_view key, std::uint64_t hash, std::string& reply) {
  const bool touch = req.kind == command::gat || req.kind == command::gats;
  // The reply grows outside the lock (its allocation may need memory
  // back from this region): a second look if it had to.
  for (std::size_t need = 0;;) {
    if (need > 0) reply.reserve(reply.size() + need);
    memory::lsa::region::reclaim_lock pin(_region);
    slot* s = find(key, hash);
    item* it = s != nullptr ? s->object : nullptr;
    const std::size_t want = it != nullptr ? it->key_length + it->value_length + 64 : 0;
    if (need == 0 && reply.capacity() - reply.size() < want) {
      need = want;
      continue;
    }
    ++_stats.cmd_get;
    if (touch) ++_stats.cmd_touch;
    if (it == nullptr) {
      ++_stats.get_misses;
      if (touch) ++_stats.touch_misses;
      return;
    }
    ++_stats.get_hits;
    if (touch) {
      ++_stats.touch_hits;
      it->exptime = realtime(req.exptime);
    }
    bump(it);
    reply += "VALUE ";
    reply += it->key();
    reply += ' ';
    append_number(reply, it->flags);
    reply += ' ';
    append_number(reply, it->value_length);
    if (req.kind == command::gets || req.kind == command::gats) {
      reply += ' ';
      append_number(reply, it->cas);
    }
    reply += "\r\n";
    reply += it->value_line();
    return;
  }
}

void cache::execute(const request& req, std::uint64_t hash, std::string_view data, std::string& reply) {
  if (req.keys.empty()) {
    // Not a keyed command (the server runs those itself).
    reply += req.kind == command::meta_noop ? "MN\r\n" : "ERROR\r\n";
    return;
  }
  const std::string_view key = req.key();
  auto say = [&](std::string_view line) {
    if (req.noreply) return;
    reply += line;
    reply += "\r\n";
  };
  switch (req.kind) {
    case command::set:
    case command::add:
    case command::replace:
    case command::append:
    case command::prepend:
    case command::cas: {
      ++_stats.cmd_set;
      // (req.bytes: the server skips a block too large to store, and
      // still comes here, for the reply and to drop the key's old value.)
      if (!fits(key.size(), req.bytes)) {
        ++_stats.store_too_large;
        if (req.kind == command::set) {
          memory::lsa::region::reclaim_lock pin(_region);
          if (slot* s = find_raw(key, hash)) unlink(s);
        }
        return say("SERVER_ERROR object too large for cache");
      }
      switch (store(req.kind, key, hash, req.flags, req.exptime, data, req.cas_unique, false, nullptr)) {
        case store_result::stored:
          return say("STORED");
        case store_result::not_stored:
          return say("NOT_STORED");
        case store_result::exists:
          return say("EXISTS");
        case store_result::not_found:
          return say("NOT_FOUND");
        case store_result::no_memory:
          return say("SERVER_ERROR out of memory storing object");
      }
      return;
    }
    case command::incr:
    case command::decr: {
      std::uint64_t value = 0;
      item* it = nullptr;
      switch (arithmetic(key, hash, req.kind == command::incr, req.delta, &value, &it)) {
        case arithmetic_result::done: {
          if (req.noreply) return;
          append_number(reply, value);
          reply += "\r\n";
          return;
        }
        case arithmetic_result::not_found:
          return say("NOT_FOUND");
        case arithmetic_result::non_numeric:
          return say("CLIENT_ERROR cannot increment or decrement non-numeric value");
        case arithmetic_result::no_memory:
          return say("SERVER_ERROR out of memory");
      }
      return;
    }
    case command::del: {
      memory::lsa::region::reclaim_lock pin(_region);
      slot* s = find(key, hash);
      if (s == nullptr) {
        ++_stats.delete_misses;
        return say("NOT_FOUND");
      }
      ++_stats.delete_hits;
      unlink(s);
      return say("DELETED");
    }
    case command::touch: {
      memory::lsa::region::reclaim_lock pin(_region);
      ++_stats.cmd_touch;
      slot* s = find(key, hash);
      if (s == nullptr) {
        ++_stats.touch_misses;
        return say("NOT_FOUND");
      }
      ++_stats.touch_hits;
      s->object->exptime = realtime(req.exptime);
      bump(s->object);
      return say("TOUCHED");
    }
    case command::meta_get:
      ++_stats.cmd_meta;
      return meta_get(req, hash, reply);
    case command::meta_set:
      ++_stats.cmd_meta;
      return meta_set(req, hash, data, reply);
    case command::meta_delete:
      ++_stats.cmd_meta;
      return meta_delete(req, hash, reply);
    case command::meta_arithmetic:
      ++_stats.cmd_meta;
      return meta_arithmetic(req, hash, reply);
    case command::meta_debug:
      ++_stats.cmd_meta;
      return meta_debug(req, hash, reply);
    default:
      reply += "ERROR\r\n";
      return;
  }
}

// --- Meta commands. ----------------------------------------------------------

void cache::append_key_flag(const request& req, std::string& reply) {
  reply += " k";
  if (req.meta.has('b')) {
    // The key as it came, then b: it is base64 (as memcached replies).
    std::string encoded;
    base64_encode(req.key(), encoded);
    reply += encoded;
    reply += " b";
  } else {
    reply += req.key();
  }
}

namespace {
// The flags every meta reply echoes: O and k (and b with k).
bool common_return_flag(char letter) noexcept { return letter == 'O' || letter == 'k'; }
}  // namespace

void cache::meta_get(const request& req, std::uint64_t hash, std::string& reply) {
  const meta_flags& m = req.meta;
  const std::string_view key = req.key();
  ++_stats.cmd_get;
  item* it = nullptr;
  bool won = false;
  {
    memory::lsa::region::reclaim_lock pin(_region);
    if (slot* s = find(key, hash)) it = s->object;
  }
  if (it == nullptr && m.has('N')) {
    // Vivify: an empty item with N's TTL; this client wins the recache.
    reserve_one();
    item* fresh = allocate_item(key, 0);
    if (fresh != nullptr) {
      memory::lsa::region::reclaim_lock pin(_region);
      if (slot* s = find(key, hash)) {
        _region.free(fresh);  // (cannot happen: nothing ran in between)
        it = s->object;
      } else {
        fresh->exptime = realtime(m.vivify_ttl);
        fresh->bits |= token_sent_bit;
        link(fresh, hash);
        it = fresh;
        won = true;
      }
    }
  }
  if (it != nullptr && m.has('v')) {
    // Room for the value first: growing the reply may need memory back
    // from this region, which moves items (so look again after).
    const std::size_t need = it->value_length + key.size() + m.opaque.size() + 128;
    if (reply.capacity() - reply.size() < need) {
      reply.reserve(reply.size() + need);
      memory::lsa::region::reclaim_lock pin(_region);
      slot* s = find(key, hash);
      it = s != nullptr ? s->object : nullptr;
    }
  }
  memory::lsa::region::reclaim_lock pin(_region);
  if (it == nullptr) {
    ++_stats.get_misses;
    if (m.has('q')) return;
    reply += "EN";
    for (std::uint8_t i = 0; i < m.order_count; ++i) {
      if (m.order[i] == 'O') {
        reply += " O";
        reply += m.opaque;
      } else if (m.order[i] == 'k') {
        append_key_flag(req, reply);
      }
    }
    reply += "\r\n";
    return;
  }
  ++_stats.get_hits;
  const bool hit_before = (it->bits & fetched_bit) != 0;
  const std::uint32_t last_access = _now >= it->time ? _now - it->time : 0;
  if (m.has('T')) {
    ++_stats.cmd_touch;
    ++_stats.touch_hits;
    it->exptime = realtime(m.ttl);
  }
  const bool token_was_sent = (it->bits & token_sent_bit) != 0 && !won;
  if (!won && !token_was_sent) {
    if (it->bits & stale_bit) won = true;
    if (m.has('R') && it->exptime != 0 && ttl_seconds(it) < m.recache_ttl) won = true;
    if (won) it->bits |= token_sent_bit;
  }
  if (!m.has('u')) bump(it);
  reply += m.has('v') ? "VA " : "HD";
  if (m.has('v')) append_number(reply, it->value_length);
  for (std::uint8_t i = 0; i < m.order_count; ++i) {
    switch (m.order[i]) {
      case 'c':
        reply += " c";
        append_number(reply, it->cas);
        break;
      case 'f':
        reply += " f";
        append_number(reply, it->flags);
        break;
      case 'h':
        reply += hit_before ? " h1" : " h0";
        break;
      case 'k':
        append_key_flag(req, reply);
        break;
      case 'l':
        reply += " l";
        append_number(reply, last_access);
        break;
      case 'O':
        reply += " O";
        reply += m.opaque;
        break;
      case 's':
        reply += " s";
        append_number(reply, it->value_length);
        break;
      case 't':
        reply += " t";
        append_signed(reply, ttl_seconds(it));
        break;
      default:
        break;
    }
  }
  if (token_was_sent) reply += " Z";
  if (it->bits & stale_bit) reply += " X";
  if (won) reply += " W";
  reply += "\r\n";
  if (m.has('v')) reply += it->value_line();
}

void cache::meta_set(const request& req, std::uint64_t hash, std::string_view data, std::string& reply) {
  const meta_flags& m = req.meta;
  ++_stats.cmd_set;
  command mode = command::set;
  switch (m.mode) {
    case 'E':
      mode = command::add;
      break;
    case 'A':
      mode = command::append;
      break;
    case 'P':
      mode = command::prepend;
      break;
    case 'R':
      mode = command::replace;
      break;
    default:
      break;
  }
  if (m.has('C') && mode == command::set) mode = command::cas;
  std::uint64_t cas = 0;
  const std::string_view key = req.key();
  if (!fits(key.size(), req.bytes)) {
    ++_stats.store_too_large;
    reply += "SERVER_ERROR object too large for cache\r\n";
    return;
  }
  store_result r = store(mode, key, hash, m.client_flags, m.ttl, data, m.compare_cas, m.has('I'), &cas);
  std::string_view code;
  switch (r) {
    case store_result::stored:
      if (m.has('q')) return;
      code = "HD";
      break;
    case store_result::not_stored:
      code = "NS";
      break;
    case store_result::exists:
      code = "EX";
      break;
    case store_result::not_found:
      code = "NF";
      break;
    case store_result::no_memory:
      reply += "SERVER_ERROR out of memory storing object\r\n";
      return;
  }
  reply += code;
  for (std::uint8_t i = 0; i < m.order_count; ++i) {
    const char letter = m.order[i];
    if (letter == 'c') {
      reply += " c";
      append_number(reply, cas);
    } else if (letter == 'k') {
      append_key_flag(req, reply);
    } else if (letter == 'O') {
      reply += " O";
      reply += m.opaque;
    }
  }
  reply += "\r\n";
}

void cache::meta_delete(const request& req, std::uint64_t hash, std::string& reply) {
  const meta_flags& m = req.meta;
  memory::lsa::region::reclaim_lock pin(_region);
  slot* s = find(req.key(), hash);
  std::string_view code;
  if (s == nullptr) {
    ++_stats.delete_misses;
    code = "NF";
  } else if (m.has('C') && s->object->cas != m.compare_cas) {
    code = "EX";
  } else {
    ++_stats.delete_hits;
    if (m.has('I')) {
      // Stale, not gone: served with X until someone recaches it.
      item* it = s->object;
      it->bits = static_cast<std::uint8_t>((it->bits | stale_bit) & ~token_sent_bit);
      it->cas = next_cas();
      if (m.has('T')) it->exptime = realtime(m.ttl);
    } else {
      unlink(s);
    }
    if (m.has('q')) return;
    code = "HD";
  }
  reply += code;
  for (std::uint8_t i = 0; i < m.order_count; ++i) {
    const char letter = m.order[i];
    if (common_return_flag(letter)) {
      if (letter == 'k') {
        append_key_flag(req, reply);
      } else {
        reply += " O";
        reply += m.opaque;
      }
    }
  }
  reply += "\r\n";
}

void cache::meta_arithmetic(const request& req, std::uint64_t hash, std::string& reply) {
  const meta_flags& m = req.meta;
  const std::string_view key = req.key();
  const bool incr = m.mode != 'D' && m.mode != '-';
  std::string_view code;
  std::uint64_t value = 0;
  item* it = nullptr;
  if (m.has('C')) {
    memory::lsa::region::reclaim_lock pin(_region);
    slot* s = find(key, hash);
    if (s != nullptr && s->object->cas != m.compare_cas) code = "EX";
  }
  if (code.empty()) {
    switch (arithmetic(key, hash, incr, m.delta, &value, &it)) {
      case arithmetic_result::done:
        code = "HD";
        break;
      case arithmetic_result::non_numeric:
        reply += "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
        return;
      case arithmetic_result::no_memory:
        reply += "SERVER_ERROR out of memory\r\n";
        return;
      case arithmetic_result::not_found:
        code = "NF";
        if (m.has('N')) {
          // Created on a miss, holding J (no delta applied).
          char text[24];
          const auto length =
              static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), m.initial).ptr - text);
          std::uint64_t cas = 0;
          if (store(command::add, key, hash, 0, m.vivify_ttl, std::string_view(text, length), 0, false, &cas) ==
              store_result::stored) {
            value = m.initial;
            memory::lsa::region::reclaim_lock pin(_region);
            slot* s = find(key, hash);
            it = s != nullptr ? s->object : nullptr;
            code = it != nullptr ? "HD" : "NS";
          } else {
            code = "NS";
          }
        }
        break;
    }
  }
  memory::lsa::region::reclaim_lock pin(_region);
  const bool done = code == "HD";
  if (done && it != nullptr && m.has('T')) it->exptime = realtime(m.ttl);
  if (done && m.has('q')) return;
  if (done && m.has('v')) {
    char text[24];
    const auto length = static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), value).ptr - text);
    reply += "VA ";
    append_number(reply, length);
  } else {
    reply += code;
  }
  for (std::uint8_t i = 0; i < m.order_count; ++i) {
    const char letter = m.order[i];
    if (letter == 'O') {
      reply += " O";
      reply += m.opaque;
    } else if (letter == 'k') {
      append_key_flag(req, reply);
    } else if (done && it != nullptr && letter == 'c') {
      reply += " c";
      append_number(reply, it->cas);
    } else if (done && it != nullptr && letter == 't') {
      reply += " t";
      append_signed(reply, ttl_seconds(it));
    }
  }
  reply += "\r\n";
  if (done && m.has('v')) {
    append_number(reply, value);
    reply += "\r\n";
  }
}

void cache::meta_debug(const request& req, std::uint64_t hash, std::string& reply) {
  memory::lsa::region::reclaim_lock pin(_region);
  slot* s = find(req.key(), hash);
  if (s == nullptr) {
    reply += "EN\r\n";
    return;
  }
  const item* it = s->object;
  reply += "ME ";
  if (req.meta.has('b')) {
    std::string encoded;
    base64_encode(req.key(), encoded);
    reply += encoded;
  } else {
    reply += req.key();
  }
  reply += " exp=";
  append_signed(reply, ttl_seconds(it));
  reply += " la=";
  append_number(reply, _now >= it->time ? _now - it->time : 0);
  reply += " cas=";
  append_number(reply, it->cas);
  reply += (it->bits & fetched_bit) ? " fetch=yes" : " fetch=no";
  // No slab classes here: every item is in the one region.
  reply += " cls=1 size=";
  append_number(reply, memory::lsa::region::object_size(it) + 16);
  reply += "\r\n";
}

}  // namespace reef::memcached
