// Ethernet II framing: addresses and the 14-byte header, read from and
// written to bytes in wire order. A received frame is hostile: parse()
// says what is wrong rather than trusting a length.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/assert.h"

namespace reef::tcpip {

/// A MAC address.
struct ethernet_address {
  std::array<std::uint8_t, 6> bytes{};

  /// "02:00:00:00:00:01" (hex digits in either case); nullopt for
  /// anything else.
  static std::optional<ethernet_address> parse(std::string_view text) noexcept;
  static constexpr ethernet_address broadcast() noexcept { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }

  /// "02:00:00:00:00:01".
  std::string to_string() const;
  bool is_broadcast() const noexcept { return *this == broadcast(); }
  /// Group addresses (broadcast included) have the first byte's low bit.
  bool is_multicast() const noexcept { return bytes[0] & 1; }
  friend bool operator==(const ethernet_address&, const ethernet_address&) = default;
};

/// EtherTypes the stack speaks.
enum class ether_type : std::uint16_t {
  ipv4 = 0x0800,
  arp = 0x0806,
  ipv6 = 0x86dd,
};

/// Why a received frame was dropped at the Ethernet header.
enum class ethernet_error : std::uint8_t {
  none,
  truncated,   // shorter than the header
  not_type,    // an 802.3 length where Ethernet II has its type
};

struct ethernet_header {
  static constexpr std::size_t size = 14;

  ethernet_address destination;
  ethernet_address source;
  std::uint16_t type = 0;  // an ether_type, or another the stack drops

  /// The header at the start of `frame`; nullopt if the frame is shorter
  /// than a header, or its type is a length (802.3, below 0x0600), which
  /// Ethernet II receivers drop.
  static std::optional<ethernet_header> parse(std::span<const std::uint8_t> frame) noexcept;
  /// The same, saying why a frame is refused (for the drop counters).
  /// (Inline, as write(): every frame passes here.)
  static ethernet_error parse(std::span<const std::uint8_t> frame, ethernet_header& out) noexcept {
    if (frame.size() < size) return ethernet_error::truncated;
    const auto type = static_cast<std::uint16_t>(frame[12] << 8 | frame[13]);
    if (type < 0x0600) return ethernet_error::not_type;  // an 802.3 length, not a type
    std::memcpy(out.destination.bytes.data(), frame.data(), 6);
    std::memcpy(out.source.bytes.data(), frame.data() + 6, 6);
    out.type = type;
    return ethernet_error::none;
  }
  /// Writes the header's 14 bytes. REQUIRES: out.size() >= size.
  void write(std::span<std::uint8_t> out) const noexcept {
    REEF_ASSERT(out.size() >= size, "no room for an Ethernet header");
    std::memcpy(out.data(), destination.bytes.data(), 6);
    std::memcpy(out.data() + 6, source.bytes.data(), 6);
    out[12] = static_cast<std::uint8_t>(type >> 8);
    out[13] = static_cast<std::uint8_t>(type);
  }
};

}  // namespace reef::tcpip
