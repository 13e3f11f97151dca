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

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/assert.h"
#include "net/packet.h"

namespace reef::tcpip {

class checksummer {
 public:
  /// Adds bytes; any length, in any number of calls.
  void add(std::span<const std::uint8_t> bytes) noexcept;
  void add(const char* data, std::size_t size) noexcept {
    add(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data), size));
  }
  /// Adds every fragment of `p`, in order; or its first `limit` bytes.
  void add(const packet& p) noexcept;
  void add(const packet& p, std::size_t limit) noexcept;
  /// Adds a 16-bit or 32-bit value as big-endian bytes (a pseudo header's
  /// fields). REQUIRES: an even number of bytes added so far.
  void add_u16(std::uint16_t v) noexcept {
    REEF_ASSERT(!_odd, "a 16-bit field added after an odd number of bytes");
    _sum += v;
  }
  void add_u32(std::uint32_t v) noexcept {
    REEF_ASSERT(!_odd, "a 32-bit field added after an odd number of bytes");
    _sum += (v >> 16) + (v & 0xffff);
  }

  /// The checksum of what was added: 0 if the bytes held their own correct
  /// checksum (how a receiver checks one).
  std::uint16_t get() const noexcept;
  /// The folded sum of what was added, not complemented: what a device
  /// that fills in TCP/UDP checksums (transmit offload) expects to find in
  /// the checksum field, over the pseudo header alone.
  std::uint16_t partial() const noexcept;

 private:
  std::uint64_t _sum = 0;  // of big-endian 16-bit words, folded at the end
  bool _odd = false;       // an odd number of bytes so far: the next byte is a word's low half
};

/// The checksum of `bytes` alone (an IPv4 header, an ICMP message).
std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace reef::tcpip
