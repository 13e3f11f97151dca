// IPv4 fragmentation on send (RFC 791 3.2): a datagram larger than the
// MTU goes as pieces whose data are multiples of 8 bytes (the last
// excepted), each with its own header. The pieces share the datagram's
// memory (no copy); each header is written into the piece's header room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/packet.h"
#include "tcpip/ipv4_header.h"

namespace reef::tcpip {

/// The IP packets (header and data) that carry `data` with header `h`
/// (its total_length and fragment fields are set per piece; a datagram
/// that is itself a piece keeps its offset and last-piece flag) within
/// `mtu` bytes each: one packet if it fits. Empty if it does not fit and
/// `h.dont_fragment` (the caller reports "fragmentation needed"), if
/// the MTU leaves no room for 8 bytes of data, or if the data would end
/// past the 65535 bytes an IPv4 datagram can have.
std::vector<packet> fragment_ipv4(const ipv4_header& h, packet data, std::size_t mtu);

/// Puts header `h` (its total length set from `data`'s) in front of
/// `data`, which becomes one IP packet.
[[gnu::always_inline]] inline void prepend_ipv4_header(ipv4_header h, packet& data) {
  h.total_length = static_cast<std::uint16_t>(ipv4_header::min_size + data.len());
  char* room = data.prepend_header(ipv4_header::min_size);
  h.write(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(room), ipv4_header::min_size));
}

}  // namespace reef::tcpip
