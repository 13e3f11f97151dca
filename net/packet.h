// A packet: bytes in several fragments (scatter-gather), with what keeps
// them alive. Protocol layers prepend headers in front without moving the
// payload, and a packet can be shared (for retransmission) without copying.
//
//   packet p(std::move(payload));               // one fragment
//   auto* tcp = p.prepend_header<tcp_hdr>();    // header space in front
//   auto* ip = p.prepend_header<ip_hdr>();      // in front of that
//
// Thread rules: one shard, like temporary_buffer.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <span>

#include "core/assert.h"
#include "core/small_vector.h"
#include "core/temporary_buffer.h"

namespace reef {

/// One contiguous piece of a packet.
struct fragment {
  char* base;
  std::size_t size;
};

class packet {
 public:
  /// Room kept in front of the first header for later ones, in bytes.
  static constexpr std::size_t header_room = 128;

  packet() noexcept = default;
  /// One fragment: the buffer's bytes.
  explicit packet(temporary_buffer<char> buffer);
  /// One fragment over memory released by `d`.
  packet(fragment f, deleter d) : _len(f.size) {
    _fragments.push_back(f);
    if (d) _deleters.push_back(std::move(d));  // (memory nobody frees needs no deleter)
  }
  packet(packet&&) noexcept = default;
  packet& operator=(packet&&) noexcept = default;
  packet(const packet&) = delete;
  packet& operator=(const packet&) = delete;

  /// A copy of `text` as a one-fragment packet.
  static packet copy_of(std::string_view text) { return packet(temporary_buffer<char>::copy_of(text)); }

  /// Adds the buffer's bytes at the end.
  void append(temporary_buffer<char> buffer);
  /// Adds `other`'s fragments at the end.
  void append(packet&& other);

  /// Makes `size` (<= header_room) bytes of room in front and returns them
  /// (uninitialized). Successive headers share one small allocation.
  [[gnu::always_inline]] char* prepend_header(std::size_t size) {
    if (_room_in_front >= size && !_fragments.empty()) {  // the common case: a header in front of one
      fragment& first = _fragments.front();
      first.base -= size;
      first.size += size;
      _room_in_front -= size;
      _len += size;
      return first.base;
    }
    return prepend_header_space(size);
  }
  template <typename Header>
  Header* prepend_header() {
    return reinterpret_cast<Header*>(prepend_header(sizeof(Header)));
  }

  /// Drops `n` bytes from the front. REQUIRES: n <= len().
  void trim_front(std::size_t n) noexcept {
    REEF_ASSERT(n <= _len, "packet::trim_front past the end");
    if (!_fragments.empty() && n < _fragments.front().size) {  // the common case: within the first piece
      _len -= n;
      _room_in_front = 0;  // the room no longer borders the first byte we own
      _fragments.front().base += n;
      _fragments.front().size -= n;
      return;
    }
    trim_front_across(n);
  }
  /// Keeps the first `n` bytes. REQUIRES: n <= len().
  void trim_back_to(std::size_t n) noexcept {
    REEF_ASSERT(n <= _len, "packet::trim_back_to past the end");
    if (_fragments.size() == 1 && n > 0) {  // the common case
      _fragments.front().size = n;
      _len = n;
      return;
    }
    trim_back_across(n);
  }

  /// Another packet over the same bytes.
  packet share();
  /// Another packet over `length` bytes from `offset`. REQUIRES: in range.
  packet share(std::size_t offset, std::size_t length);

  std::size_t len() const noexcept { return _len; }
  std::size_t nr_frags() const noexcept { return _fragments.size(); }
  std::span<const fragment> fragments() const noexcept { return _fragments; }

  /// The bytes in one buffer (no copy if there is one fragment).
  temporary_buffer<char> linearize() &;
  /// The same, the packet consumed (left empty): a one-fragment packet's
  /// memory changes hands without a reference taken and dropped.
  temporary_buffer<char> linearize() && {
    if (_fragments.size() == 1 && _deleters.size() <= 1) {  // the common case: a received frame's piece
      temporary_buffer<char> out(_fragments.front().base, _fragments.front().size,
                                 _deleters.empty() ? deleter() : std::move(_deleters.front()));
      make_empty();
      return out;
    }
    return linearize_rvalue_slowly();
  }

 private:
  char* prepend_header_space(std::size_t size);
  temporary_buffer<char> linearize_rvalue_slowly();
  void trim_front_across(std::size_t n) noexcept;
  void trim_back_across(std::size_t n) noexcept;
  void make_empty() noexcept {
    _fragments.clear();
    _deleters.clear();
    _len = 0;
    _room_in_front = 0;
  }

  // (Room for a payload, a header buffer and their deleters without an
  // allocation: the common packet.)
  small_vector<fragment, 2> _fragments;
  small_vector<deleter, 2> _deleters;
  std::size_t _len = 0;
  // Room left in front of the first fragment, when it is header space.
  std::size_t _room_in_front = 0;
};

}  // namespace reef
