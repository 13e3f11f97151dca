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
  packet(fragment f, deleter d);
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
  char* prepend_header(std::size_t size);
  template <typename Header>
  Header* prepend_header() {
    return reinterpret_cast<Header*>(prepend_header(sizeof(Header)));
  }

  /// Drops `n` bytes from the front. REQUIRES: n <= len().
  void trim_front(std::size_t n) noexcept;
  /// Keeps the first `n` bytes. REQUIRES: n <= len().
  void trim_back_to(std::size_t n) noexcept;

  /// Another packet over the same bytes.
  packet share();
  /// Another packet over `length` bytes from `offset`. REQUIRES: in range.
  packet share(std::size_t offset, std::size_t length);

  std::size_t len() const noexcept { return _len; }
  std::size_t nr_frags() const noexcept { return _fragments.size(); }
  std::span<const fragment> fragments() const noexcept { return _fragments; }

  /// The bytes in one buffer (no copy if there is one fragment).
  temporary_buffer<char> linearize();

 private:
  // (Room for a payload, a header buffer and their deleters without an
  // allocation: the common packet.)
  small_vector<fragment, 2> _fragments;
  small_vector<deleter, 2> _deleters;
  std::size_t _len = 0;
  // Room left in front of the first fragment, when it is header space.
  std::size_t _room_in_front = 0;
};

}  // namespace reef
