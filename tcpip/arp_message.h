// ARP for IPv4 over Ethernet (RFC 826): the 28-byte message, read from and
// written to bytes in wire order. What is not Ethernet/IPv4 ARP is refused
// with its reason, for the drop counters.
#pragma once

#include <cstdint>
#include <span>

#include "tcpip/ethernet.h"

namespace reef::tcpip {

/// Why a received ARP message was dropped.
enum class arp_error : std::uint8_t {
  none,
  truncated,          // shorter than 28 bytes
  not_ethernet_ipv4,  // another hardware or protocol type, or their sizes
  bad_operation,      // neither a request nor a reply
};

struct arp_message {
  static constexpr std::size_t size = 28;
  enum class operation : std::uint16_t { request = 1, reply = 2 };

  operation op = operation::request;
  ethernet_address sender_mac;
  std::uint32_t sender_ip = 0;  // host byte order
  ethernet_address target_mac;  // zero in a request
  std::uint32_t target_ip = 0;

  /// Reads the message at the start of `bytes` into `out`; arp_error::none
  /// or why it was refused (`out` then unspecified). Bytes after the 28
  /// (an Ethernet frame's padding) are ignored.
  static arp_error parse(std::span<const std::uint8_t> bytes, arp_message& out) noexcept;
  /// Writes the 28 bytes. REQUIRES: out.size() >= size.
  void write(std::span<std::uint8_t> out) const noexcept;
};

}  // namespace reef::tcpip
