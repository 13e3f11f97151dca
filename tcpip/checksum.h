// The Internet checksum (RFC 1071): the one's complement of the one's
// complement sum of 16-bit big-endian words. IPv4 headers, ICMP, UDP and
// TCP use it; UDP and TCP over a pseudo header, and over a packet's
// fragments as they lie (an odd-length fragment shifts the words of the
// next one, which the sum keeps track of).
//
//   checksummer c;
//   c.add_u32(source);  c.add_u32(destination);  c.add_u16(17);  c.add_u16(length);
//   c.add(p);                                    // the UDP header and data
//   std::uint16_t sum = c.get();                 // to store big-endian
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "core/assert.h"
#include "net/packet.h"

namespace reef::tcpip {

namespace checksum_internal {

// The sums are kept over native 64-bit words, with end-around carry: a
// one's complement sum modulo 0xffff like the 16-bit one, since 2^16,
// 2^32 and 2^64 are all 1 modulo 0xffff, and never 0 unless every byte
// was. On a little-endian machine the words' bytes are swapped against
// the wire's big-endian ones, which does not change a one's complement
// sum but swaps its two bytes: fold() swaps them back, once, at the end.

/// a + b with the carry out of bit 63 added back in.
[[gnu::always_inline]] inline std::uint64_t add_carry(std::uint64_t a, std::uint64_t b) noexcept {
  a += b;
  return a + (a < b);
}

// The native sum of `n` (even) bytes. (Inline: most sums are over a
// header of 8 to 60 bytes, where a call would cost as much as the sum.)
[[gnu::always_inline]] inline std::uint64_t sum_words(const std::uint8_t* p, std::size_t n) noexcept {
  unsigned __int128 acc = 0;  // (an add and an add-with-carry per word)
  // (Neither unrolled nor vectorized: the carry chain sets the pace on
  // long buffers, and on short ones the set-up of either costs more than
  // it saves.)
#pragma clang loop unroll(disable) vectorize(disable)
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    acc += w;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    acc += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    acc += w;
  }
  return add_carry(static_cast<std::uint64_t>(acc), static_cast<std::uint64_t>(acc >> 64));
}

/// A 16-bit wire-order value as a native sum would hold it.
constexpr std::uint64_t native16(std::uint16_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint16_t>((v >> 8) | (v << 8));
  } else {
    return v;
  }
}

/// A native sum folded to 16 bits, in wire order (host value).
[[gnu::always_inline]] inline std::uint16_t fold(std::uint64_t sum) noexcept {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(native16(static_cast<std::uint16_t>(sum)));
}

}  // namespace checksum_internal

class checksummer {
 public:
  /// Adds bytes; any length, in any number of calls.
  [[gnu::always_inline]] void add(std::span<const std::uint8_t> bytes) noexcept {
    using namespace checksum_internal;
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    if (n == 0) return;
    if (_odd) [[unlikely]] {
      _sum = add_carry(_sum, native16(*p));  // the low half of the word the last call began
      ++p;
      --n;
      _odd = false;
    }
    _sum = add_carry(_sum, sum_words(p, n & ~std::size_t{1}));
    if (n & 1) {
      _sum = add_carry(_sum, native16(static_cast<std::uint16_t>(p[n - 1] << 8)));  // the high half of a word
      _odd = true;
    }
  }
  [[gnu::always_inline]] void add(const char* data, std::size_t size) noexcept {
    add(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data), size));
  }
  /// Adds every fragment of `p`, in order; or its first `limit` bytes.
  [[gnu::always_inline]] void add(const packet& p) noexcept {
    for (const fragment& f : p.fragments()) add(f.base, f.size);
  }
  void add(const packet& p, std::size_t limit) noexcept;
  /// Adds a 16-bit or 32-bit value as big-endian bytes (a pseudo header's
  /// fields). REQUIRES: an even number of bytes added so far.
  void add_u16(std::uint16_t v) noexcept { add_words(v); }
  void add_u32(std::uint32_t v) noexcept { add_words((v >> 16) + (v & 0xffff)); }
  /// Adds a sum of 16-bit fields taken as big-endian words, which the
  /// caller added up (cheaper than one call each). REQUIRES: an even
  /// number of bytes added so far.
  [[gnu::always_inline]] void add_words(std::uint32_t sum) noexcept {
    REEF_ASSERT(!_odd, "16-bit fields added after an odd number of bytes");
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    _sum = checksum_internal::add_carry(_sum, checksum_internal::native16(static_cast<std::uint16_t>(sum)));
  }

  /// The checksum of what was added: 0 if the bytes held their own correct
  /// checksum (how a receiver checks one).
  std::uint16_t get() const noexcept { return static_cast<std::uint16_t>(~checksum_internal::fold(_sum)); }
  /// The folded sum of what was added, not complemented: what a device
  /// that fills in TCP/UDP checksums (transmit offload) expects to find in
  /// the checksum field, over the pseudo header alone.
  std::uint16_t partial() const noexcept { return checksum_internal::fold(_sum); }

 private:
  std::uint64_t _sum = 0;  // native, with end-around carry (checksum_internal)
  bool _odd = false;       // an odd number of bytes so far: the next byte is a word's low half
};

/// The checksum of `bytes` alone (an IPv4 header, an ICMP message).
[[gnu::always_inline]] inline std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes) noexcept {
  checksummer c;
  c.add(bytes);
  return c.get();
}

}  // namespace reef::tcpip
