// The TCP header (RFC 9293 3.1) and the options the native stack speaks:
// MSS (RFC 9293), window scale and timestamps (RFC 7323), SACK-permitted
// and SACK blocks (RFC 2018). A received header is hostile: parse() checks
// the data offset against the segment, every option's length against the
// header, and the checksum over the pseudo header, and says why it refused
// one, for the drop counters. Options it does not know are skipped by
// their length; a known option with the wrong length is refused.
//
//   tcp_header h;
//   if (tcp_header::parse(segment, source, destination, h) != tcp_error::none) { drop; }
//   h.options.mss = 1460;
//   std::uint8_t out[tcp_header::max_size];
//   std::size_t n = h.write(out);   // header and options, a multiple of 4 bytes
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace reef::tcpip {

/// Why a received TCP segment was dropped at its header.
enum class tcp_error : std::uint8_t {
  none,
  truncated,           // shorter than 20 bytes, or than its data offset says
  bad_data_offset,     // below 5 words
  bad_option,          // an option's length is 0 or 1, or runs past the header
  bad_option_length,   // a known option with the wrong length
  bad_checksum,
};

/// The reason as words ("bad option").
const char* to_string(tcp_error e) noexcept;

/// TCP header flags (the low byte of the 13th and 14th bytes).
namespace tcp_flags {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
inline constexpr std::uint8_t ece = 0x40;
inline constexpr std::uint8_t cwr = 0x80;
}  // namespace tcp_flags

/// A SACK block: [left, right) in sequence space.
struct tcp_sack_block {
  std::uint32_t left = 0;
  std::uint32_t right = 0;
  friend bool operator==(const tcp_sack_block&, const tcp_sack_block&) = default;
};

/// The options of one segment; absent ones are nullopt (or none).
struct tcp_options {
  static constexpr std::size_t sack_blocks_max = 4;  // 40 bytes of options hold 4 at most
  static constexpr std::uint8_t window_scale_max = 14;  // RFC 7323 2.3: larger ones read as 14

  std::optional<std::uint16_t> mss;          // kind 2, SYN only
  std::optional<std::uint8_t> window_scale;  // kind 3, SYN only; at most window_scale_max
  bool sack_permitted = false;               // kind 4, SYN only
  std::optional<std::array<std::uint32_t, 2>> timestamps;  // kind 8: TSval, TSecr
  std::array<tcp_sack_block, sack_blocks_max> sack{};      // kind 5: the first sack_count
  std::size_t sack_count = 0;

  /// Bytes write() gives them (a multiple of 4).
  std::size_t size() const noexcept;
  /// The SACK blocks write() sends: the first ones, as many as fit beside
  /// the other options (3 with timestamps, RFC 2018 3).
  std::size_t sack_blocks_fitting() const noexcept;

 private:
  std::size_t size_without_sack() const noexcept;
};

struct tcp_header {
  static constexpr std::size_t min_size = 20;
  static constexpr std::size_t max_size = 60;

  std::uint16_t source_port = 0;
  std::uint16_t destination_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;       // tcp_flags
  std::uint16_t window = 0;     // as on the wire (not scaled)
  std::uint16_t checksum = 0;   // as read; write() leaves it 0
  std::uint16_t urgent = 0;
  std::uint8_t header_length = min_size;  // bytes, options included (parsed headers)
  tcp_options options;

  bool has(std::uint8_t flag) const noexcept { return (flags & flag) != 0; }

  /// Reads the header of the segment in `segment` (the IP datagram's
  /// data: header, options and payload) into `out`, checking the checksum
  /// against the IPv4 addresses (host order) unless `checksum_verified`.
  /// On an error `out` holds what was read so far: nothing to use.
  static tcp_error parse(std::span<const std::uint8_t> segment, std::uint32_t source, std::uint32_t destination,
                         tcp_header& out, bool checksum_verified = false) noexcept;

  /// Writes the header and its options, each aligned as Linux does (NOPs
  /// in front: the timestamps' values on 4-byte boundaries), the checksum
  /// field 0; how many bytes. SACK blocks that do not fit are left out.
  /// REQUIRES: out.size() >= min_size + options.size().
  std::size_t write(std::span<std::uint8_t> out) const noexcept;
};

/// The checksum to put in a segment from `source` to `destination`
/// (IPv4, host order) whose header (its checksum field 0) and payload are
/// `segment`.
std::uint16_t tcp_checksum(std::uint32_t source, std::uint32_t destination,
                           std::span<const std::uint8_t> segment) noexcept;

}  // namespace reef::tcpip
