// The IPv4 header (RFC 791): validated on receive, written on send. A
// received header is hostile: parse() checks the version, the header and
// total lengths against the frame, the checksum and the fragment's
// extent, and says why it refused one, for the drop counters. Options are
// skipped (their length is known from the header length).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "core/assert.h"
#include "tcpip/checksum.h"

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

/// The pseudo header a transport's checksum covers (RFC 768, RFC 9293
/// 3.1): the addresses (host order), the protocol and the transport's
/// length, summed as 16-bit words for checksummer::add_words(), to which
/// a caller may add its header's fields.
constexpr std::uint32_t ipv4_pseudo_header_sum(std::uint32_t source, std::uint32_t destination, ip_protocol protocol,
                                               std::uint16_t length) noexcept {
  return (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) +
         static_cast<std::uint8_t>(protocol) + length;
}

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
  /// On an error, `out` holds what was read so far: nothing to use.
  /// (Inline: every datagram received passes here.)
  [[gnu::always_inline]] static ipv4_error parse(std::span<const std::uint8_t> bytes, ipv4_header& out,
                                                 bool checksum_verified = false) noexcept {
    if (auto e = read(bytes, out); e != ipv4_error::none) return e;
    if (bytes.size() < out.total_length) return ipv4_error::truncated;
    if (!checksum_verified && internet_checksum(bytes.first(out.header_length)) != 0) return ipv4_error::bad_checksum;
    if (std::size_t{out.fragment_offset} + out.data_length() > max_datagram) return ipv4_error::fragment_too_large;
    return ipv4_error::none;
  }
  /// The header an ICMP error quotes (its start and 8 bytes of data, RFC
  /// 792): the version and header length are checked and the header must
  /// be there whole, but its total length may run past what is quoted and
  /// its checksum is not checked (routers may have changed it).
  static ipv4_error parse_quoted(std::span<const std::uint8_t> bytes, ipv4_header& out) noexcept;
  /// Writes a 20-byte header (no options) with its checksum.
  /// REQUIRES: out.size() >= min_size.
  [[gnu::always_inline]] void write(std::span<std::uint8_t> out) const noexcept {
    REEF_ASSERT(out.size() >= min_size, "no room for an IPv4 header");
    REEF_ASSERT(fragment_offset % 8 == 0, "an IPv4 fragment offset is a multiple of 8");
    // Five 32-bit words, and the checksum summed from the fields rather
    // than read back from the bytes.
    const std::uint32_t flags = (dont_fragment ? 0x4000u : 0) | (more_fragments ? 0x2000u : 0) | (fragment_offset / 8u);
    const std::uint32_t w0 = 0x45u << 24 | std::uint32_t{tos} << 16 | total_length;
    const std::uint32_t w1 = std::uint32_t{id} << 16 | flags;
    const std::uint32_t w2 = std::uint32_t{ttl} << 24 | std::uint32_t{protocol} << 16;  // the checksum below
    std::uint64_t sum = std::uint64_t{w0} + w1 + w2 + source + destination;  // as 32-bit words: folds the same
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    const std::uint32_t words[5] = {w0, w1, w2 | static_cast<std::uint16_t>(~sum), source, destination};
    for (std::size_t i = 0; i < 5; ++i) {
      const std::uint32_t be = to_big_endian(words[i]);
      std::memcpy(out.data() + 4 * i, &be, 4);
    }
  }

  bool is_fragment() const noexcept { return more_fragments || fragment_offset != 0; }
  /// 0 for a header whose lengths disagree (one built by hand).
  std::size_t data_length() const noexcept {
    return total_length > header_length ? std::size_t{total_length} - header_length : 0;
  }

 private:
  static constexpr std::uint32_t to_big_endian(std::uint32_t v) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
      return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
    } else {
      return v;
    }
  }

  // What parse() and parse_quoted() both check and read: the version, the
  // header's length (whole in `bytes`), a total length that holds the
  // header; the fields into `h`.
  [[gnu::always_inline]] static ipv4_error read(std::span<const std::uint8_t> bytes, ipv4_header& h) noexcept {
    if (bytes.size() < min_size) return ipv4_error::truncated;
    if (bytes[0] >> 4 != 4) return ipv4_error::bad_version;
    const std::size_t length = std::size_t{bytes[0] & 0xfu} * 4;
    if (length < min_size) return ipv4_error::bad_header_length;
    if (bytes.size() < length) return ipv4_error::truncated;
    const auto get16 = [&](std::size_t at) { return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]); };
    const auto get32 = [&](std::size_t at) { return std::uint32_t{get16(at)} << 16 | get16(at + 2); };
    const std::uint16_t total = get16(2);
    if (total < length) return ipv4_error::bad_total_length;
    const std::uint16_t fragment = get16(6);
    h.tos = bytes[1];
    h.total_length = total;
    h.id = get16(4);
    h.dont_fragment = fragment & 0x4000;
    h.more_fragments = fragment & 0x2000;
    h.fragment_offset = static_cast<std::uint16_t>((fragment & 0x1fff) * 8);
    h.ttl = bytes[8];
    h.protocol = bytes[9];
    h.source = get32(12);
    h.destination = get32(16);
    h.header_length = static_cast<std::uint8_t>(length);
    return ipv4_error::none;
  }
};

}  // namespace reef::tcpip
