#include "net/packet.h"

#include <cstring>
#include <new>
#include <type_traits>

#include "core/assert.h"
#include "core/sanitizers.h"

namespace reef {

namespace {

// Header buffers freed on this thread, kept for its next packets' headers:
// a shard that sends takes one from here rather than from the allocator
// (a header buffer costs a push and a pop, not a malloc and a free).
// Bounded. Trivially destructible, so that it outlives every other
// thread-local (a shard's stack frees packets as it goes): a cleanup
// registered at the first buffer kept empties it when the thread ends and
// sends later frees straight to operator delete. A buffer freed on a
// shard other than the one that allocated it is kept there too; the
// native stack sends packets home to be freed (foreign_ptr), so that is
// rare. Off under AddressSanitizer, which could not see a use after free
// in a recycled buffer.
struct header_space_cache {
#ifdef REEF_ASAN
  static constexpr std::size_t max = 0;
#else
  static constexpr std::size_t max = 64;
#endif
  void* blocks[max > 0 ? max : 1];
  std::size_t count;
  bool cleanup_registered;
};
static_assert(std::is_trivially_destructible_v<header_space_cache>);

thread_local header_space_cache header_spaces{};

struct header_space_cleanup {
  ~header_space_cleanup() {
    header_space_cache& cache = header_spaces;
    while (cache.count > 0) ::operator delete(cache.blocks[--cache.count]);
    cache.count = header_space_cache::max;  // full from now on: later frees go to operator delete
  }
};

void* take_header_block() noexcept {
  header_space_cache& cache = header_spaces;
  return cache.count > 0 ? cache.blocks[--cache.count] : nullptr;
}

bool keep_header_block(void* block) noexcept {
  header_space_cache& cache = header_spaces;
  if (cache.count >= header_space_cache::max) return false;
  if (!cache.cleanup_registered) [[unlikely]] {
    thread_local header_space_cleanup cleanup;
    (void)&cleanup;
    cache.cleanup_registered = true;
  }
  cache.blocks[cache.count++] = block;
  return true;
}

// Room for a packet's headers and what frees it, in one block.
class header_space final : public deleter::impl {
 public:
  /// Throws std::bad_alloc.
  static header_space* make() {
    void* block = take_header_block();
    if (block == nullptr) block = ::operator new(sizeof(header_space));
    return new (block) header_space;  // (default-initialized: the bytes are not zeroed)
  }
  char* bytes() noexcept { return _bytes; }
  static void operator delete(void* block) noexcept {
    if (!keep_header_block(block)) ::operator delete(block);
  }

 private:
  header_space() noexcept = default;
  alignas(16) char _bytes[packet::header_room];  // (its end aligned, for headers read as structs)
};

}  // namespace

packet::packet(temporary_buffer<char> buffer) {
  if (buffer.empty()) return;
  _len = buffer.size();
  _fragments.push_back(fragment{buffer.get_write(), buffer.size()});
  _deleters.push_back(buffer.release());
}

void packet::append(temporary_buffer<char> buffer) {
  if (buffer.empty()) return;
  _len += buffer.size();
  _fragments.push_back(fragment{buffer.get_write(), buffer.size()});
  _deleters.push_back(buffer.release());
}

void packet::append(packet&& other) {
  for (auto& f : other._fragments) _fragments.push_back(f);
  for (auto& d : other._deleters) _deleters.push_back(std::move(d));
  _len += other._len;
  other._fragments.clear();
  other._deleters.clear();
  other._len = 0;
}

char* packet::prepend_header_space(std::size_t size) {
  REEF_ASSERT(size <= header_room, "a header larger than packet::header_room");
  // A new small buffer for headers (one allocation with its deleter); the
  // header goes at its end, leaving room in front for the next one.
  auto* space = header_space::make();
  deleter owner(space);
  char* base = space->bytes() + header_room - size;
  _deleters.push_back(std::move(owner));
  _fragments.insert(_fragments.begin(), fragment{base, size});
  _room_in_front = header_room - size;
  _len += size;
  return base;
}

void packet::trim_front_across(std::size_t n) noexcept {
  _len -= n;
  _room_in_front = 0;
  std::size_t i = 0;
  while (n > 0 && n >= _fragments[i].size) {
    n -= _fragments[i].size;
    ++i;
  }
  _fragments.erase(_fragments.begin(), _fragments.begin() + static_cast<std::ptrdiff_t>(i));
  if (n > 0) {
    _fragments.front().base += n;
    _fragments.front().size -= n;
  }
}

void packet::trim_back_across(std::size_t n) noexcept {
  std::size_t kept = 0;
  std::size_t i = 0;
  for (; i < _fragments.size() && kept < n; ++i) {
    if (kept + _fragments[i].size > n) _fragments[i].size = n - kept;
    kept += _fragments[i].size;
  }
  _fragments.resize(i);
  _len = n;
}

packet packet::share() {
  packet p;
  p._fragments = _fragments;
  for (auto& d : _deleters) p._deleters.push_back(d.share());
  p._len = _len;
  return p;
}

packet packet::share(std::size_t offset, std::size_t length) {
  REEF_ASSERT(offset <= _len && length <= _len - offset, "packet::share out of range");
  packet p = share();
  p.trim_front(offset);
  p.trim_back_to(length);
  return p;
}

temporary_buffer<char> packet::linearize_rvalue_slowly() {
  if (_fragments.size() != 1) {
    temporary_buffer<char> out = linearize();
    make_empty();
    return out;
  }
  const fragment f = _fragments.front();
  deleter all = make_object_deleter(std::move(_deleters));
  make_empty();
  return temporary_buffer<char>(f.base, f.size, std::move(all));
}

temporary_buffer<char> packet::linearize() & {
  if (_fragments.size() == 1) {
    fragment f = _fragments.front();
    deleter all = _deleters.empty()       ? deleter()
                  : _deleters.size() == 1 ? _deleters.front().share()
                                          : make_object_deleter(share()._deleters);
    return temporary_buffer<char>(f.base, f.size, std::move(all));
  }
  temporary_buffer<char> out(_len);
  std::size_t at = 0;
  for (const auto& f : _fragments) {
    std::memcpy(out.get_write() + at, f.base, f.size);
    at += f.size;
  }
  return out;
}

}  // namespace reef
