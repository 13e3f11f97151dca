// ICMP messages for IPv4 (RFC 792): the 8-byte header, validated on
// receive (the checksum covers the whole message) and written on send.
#pragma once

#include <cstdint>
#include <span>

#include "net/packet.h"

namespace reef::tcpip {

enum class icmp_type : std::uint8_t {
  echo_reply = 0,
  destination_unreachable = 3,
  echo_request = 8,
  time_exceeded = 11,
};

/// Destination-unreachable codes the stack sends or reads.
enum class icmp_unreachable : std::uint8_t {
  network = 0,
  host = 1,
  protocol = 2,
  port = 3,
  fragmentation_needed = 4,
};

/// Why a received ICMP message was dropped.
enum class icmp_error : std::uint8_t {
  none,
  truncated,     // shorter than the header
  bad_checksum,  // over the whole message
};

struct icmp_header {
  static constexpr std::size_t size = 8;

  std::uint8_t type = 0;  // an icmp_type, or another
  std::uint8_t code = 0;
  std::uint16_t checksum = 0;
  std::uint16_t id = 0;        // echo: the identifier; otherwise the 4th word's high half
  std::uint16_t sequence = 0;  // echo: the sequence number; otherwise its low half

  /// Reads the header of `message` (the IP datagram's data, all of it:
  /// the checksum covers it) into `out`.
  static icmp_error parse(std::span<const std::uint8_t> message, icmp_header& out,
                          bool checksum_verified = false) noexcept;
  /// The same for a message in pieces (a reassembled one): no copy.
  static icmp_error parse(const packet& message, icmp_header& out, bool checksum_verified = false) noexcept;
  /// Writes the 8 bytes as they are. REQUIRES: out.size() >= size.
  void write(std::span<std::uint8_t> out) const noexcept;
};

/// The checksum to put in the header of `message` (its header with the
/// checksum field zero, then its data).
std::uint16_t icmp_checksum(const packet& message) noexcept;

}  // namespace reef::tcpip
