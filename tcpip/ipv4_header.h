// The IPv4 header (RFC 791): validated on receive, written on send. A
// received header is hostile: parse() checks the version, the header and
// total lengths against the frame, the checksum and the fragment's
// extent, and says why it refused one, for the drop counters. Options are
// skipped (their length is known from the header length).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace reef::tcpip {

/// Why a received IPv4 header was dropped.
enum class ipv4_error : std::uint8_t {
  none,
  truncated,            // the frame ends inside the header or the datagram
  bad_version,          // not 4
  bad_header_length,    // IHL below 5 words
  bad_total_length,     // shorter than the header
  bad_checksum,         // the header's checksum does not hold
  fragment_too_large,   // offset + data runs past 65535 bytes
};

/// The reason as words ("bad checksum").
const char* to_string(ipv4_error e) noexcept;

/// IP protocol numbers the stack speaks.
enum class ip_protocol : std::uint8_t {
  icmp = 1,
  tcp = 6,
  udp = 17,
};

/// "10.0.0.2" of an address in host byte order.
std::string ipv4_to_string(std::uint32_t address);

struct ipv4_header {
  static constexpr std::size_t min_size = 20;
  static constexpr std::size_t max_datagram = 65535;

  std::uint8_t tos = 0;
  std::uint16_t total_length = 0;  // header and data, bytes
  std::uint16_t id = 0;
  bool dont_fragment = false;
  bool more_fragments = false;
  std::uint16_t fragment_offset = 0;  // bytes (a multiple of 8)
  std::uint8_t ttl = 64;
  std::uint8_t protocol = 0;  // an ip_protocol, or another
  std::uint32_t source = 0;   // host byte order
  std::uint32_t destination = 0;
  std::uint8_t header_length = min_size;  // bytes, options included (parsed headers)

  /// Reads the header at the start of `bytes` (a frame's payload, which
  /// may be longer than the datagram: Ethernet pads) into `out`;
  /// ipv4_error::none or why it was refused. `checksum_verified`: the
  /// device already checked it (receive offload).
  static ipv4_error parse(std::span<const std::uint8_t> bytes, ipv4_header& out,
                          bool checksum_verified = false) noexcept;
  /// The header an ICMP error quotes (its start and 8 bytes of data, RFC
  /// 792): the version and header length are checked and the header must
  /// be there whole, but its total length may run past what is quoted and
  /// its checksum is not checked (routers may have changed it).
  static ipv4_error parse_quoted(std::span<const std::uint8_t> bytes, ipv4_header& out) noexcept;
  /// Writes a 20-byte header (no options) with its checksum.
  /// REQUIRES: out.size() >= min_size.
  void write(std::span<std::uint8_t> out) const noexcept;

  bool is_fragment() const noexcept { return more_fragments || fragment_offset != 0; }
  /// 0 for a header whose lengths disagree (one built by hand).
  std::size_t data_length() const noexcept {
    return total_length > header_length ? std::size_t{total_length} - header_length : 0;
  }
};

}  // namespace reef::tcpip
