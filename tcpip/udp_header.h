// The UDP header (RFC 768): validated on receive (the length against the
// IP payload, the checksum over the pseudo header unless it is zero, which
// RFC 768 allows for "none computed"), written on send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/assert.h"
#include "net/packet.h"
#include "tcpip/checksum.h"
#include "tcpip/ipv4_header.h"

namespace reef::tcpip {

/// Why a received UDP datagram was dropped.
enum class udp_error : std::uint8_t {
  none,
  truncated,     // shorter than the header, or than its length says
  bad_length,    // its length is below the header's 8 bytes
  bad_checksum,  // non-zero, and it does not hold
};

/// Adds UDP's pseudo header (the IPv4 addresses in host order, the
/// protocol, the UDP length) to a checksum.
inline void add_udp_pseudo_header(checksummer& c, std::uint32_t source, std::uint32_t destination,
                                  std::uint16_t length) noexcept {
  c.add_words(ipv4_pseudo_header_sum(source, destination, ip_protocol::udp, length));
}

struct udp_header {
  static constexpr std::size_t size = 8;

  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint16_t length = 0;  // header and data, bytes
  std::uint16_t checksum = 0;

  /// Reads the header of the datagram in `payload` (the IP datagram's
  /// data, which the UDP length may end before) into `out`, checking the
  /// checksum against the IPv4 addresses (host order) unless
  /// `checksum_verified`.
  /// (Inline: every datagram received passes here.)
  [[gnu::always_inline]] static udp_error parse(std::span<const std::uint8_t> payload, std::uint32_t source,
                                                std::uint32_t destination, udp_header& out,
                                                bool checksum_verified = false) noexcept {
    if (payload.size() < size) return udp_error::truncated;
    const auto get16 = [&](std::size_t at) { return static_cast<std::uint16_t>(payload[at] << 8 | payload[at + 1]); };
    const std::uint16_t length = get16(4);
    if (length < size) return udp_error::bad_length;
    if (length > payload.size()) return udp_error::truncated;
    const std::uint16_t checksum = get16(6);
    if (checksum != 0 && !checksum_verified) {
      checksummer c;
      add_udp_pseudo_header(c, source, destination, length);
      c.add(payload.first(length));
      if (c.get() != 0) return udp_error::bad_checksum;
    }
    out.source_port = get16(0);
    out.destination_port = get16(2);
    out.length = length;
    out.checksum = checksum;
    return udp_error::none;
  }
  /// The same for a datagram in pieces (a reassembled one): no copy.
  [[gnu::always_inline]] static udp_error parse(const packet& payload, std::uint32_t source,
                                                std::uint32_t destination, udp_header& out,
                                                bool checksum_verified = false) noexcept {
    if (payload.nr_frags() == 1) [[likely]] {  // a datagram in one piece
      const fragment& f = payload.fragments().front();
      return parse(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(f.base), f.size), source,
                   destination, out, checksum_verified);
    }
    return parse_pieces(payload, source, destination, out, checksum_verified);
  }
  /// Writes the 8 bytes as they are. REQUIRES: out.size() >= size.
  void write(std::span<std::uint8_t> out) const noexcept {
    REEF_ASSERT(out.size() >= size, "no room for a UDP header");
    const auto put16 = [&](std::size_t at, std::uint16_t v) {
      out[at] = static_cast<std::uint8_t>(v >> 8);
      out[at + 1] = static_cast<std::uint8_t>(v);
    };
    put16(0, source_port);
    put16(2, destination_port);
    put16(4, length);
    put16(6, checksum);
  }

 private:
  static udp_error parse_pieces(const packet& payload, std::uint32_t source, std::uint32_t destination,
                                udp_header& out, bool checksum_verified) noexcept;
};

/// The checksum to put in the header of `datagram` (its 8 header bytes,
/// with the checksum field zero, then its data) sent from `source` to
/// `destination`: never 0, which would mean "none" (0xffff instead).
/// REQUIRES: datagram.len() <= 65535.
std::uint16_t udp_checksum(std::uint32_t source, std::uint32_t destination, const packet& datagram) noexcept;

}  // namespace reef::tcpip
