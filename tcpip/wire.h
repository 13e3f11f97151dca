// Big-endian (network order) fields in bytes, for the headers' parse()
// and write(). The caller has checked the bounds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "net/packet.h"

namespace reef::tcpip::wire {

inline std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
inline std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}
inline void put16(std::span<std::uint8_t> b, std::size_t at, std::uint16_t v) noexcept {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(std::span<std::uint8_t> b, std::size_t at, std::uint32_t v) noexcept {
  for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

/// Copies out.size() bytes of `p` from `offset` (it has that many) into
/// `out`, across its fragments.
inline void copy_at(const packet& p, std::size_t offset, std::span<std::uint8_t> out) noexcept {
  std::size_t at = 0;
  for (const fragment& f : p.fragments()) {
    if (at == out.size()) break;
    if (offset >= f.size) {
      offset -= f.size;
      continue;
    }
    const std::size_t n = std::min(out.size() - at, f.size - offset);
    std::memcpy(out.data() + at, f.base + offset, n);
    at += n;
    offset = 0;
  }
}

/// Copies the first out.size() bytes of `p` (which has at least as many)
/// into `out`, across its fragments: a header read from a packet in
/// pieces.
inline void copy_front(const packet& p, std::span<std::uint8_t> out) noexcept { copy_at(p, 0, out); }

}  // namespace reef::tcpip::wire
