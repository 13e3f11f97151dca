#include "tcpip/ipv4_header.h"

#include "core/assert.h"
#include "tcpip/checksum.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

const char* to_string(ipv4_error e) noexcept {
  switch (e) {
    case ipv4_error::none: return "none";
    case ipv4_error::truncated: return "truncated";
    case ipv4_error::bad_version: return "bad version";
    case ipv4_error::bad_header_length: return "bad header length";
    case ipv4_error::bad_total_length: return "bad total length";
    case ipv4_error::bad_checksum: return "bad checksum";
    case ipv4_error::fragment_too_large: return "fragment too large";
  }
  return "unknown";
}

std::string ipv4_to_string(std::uint32_t address) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (shift != 24) out += '.';
    out += std::to_string((address >> shift) & 0xff);
  }
  return out;
}

namespace {

// What parse() and parse_quoted() both check and read: the version, the
// header's length (whole in `bytes`), a total length that holds the
// header; the fields into `h`.
ipv4_error read_header(std::span<const std::uint8_t> bytes, ipv4_header& h) noexcept {
  if (bytes.size() < ipv4_header::min_size) return ipv4_error::truncated;
  if (bytes[0] >> 4 != 4) return ipv4_error::bad_version;
  const std::size_t header_length = std::size_t{bytes[0] & 0xfu} * 4;
  if (header_length < ipv4_header::min_size) return ipv4_error::bad_header_length;
  if (bytes.size() < header_length) return ipv4_error::truncated;
  const std::uint16_t total = wire::get16(bytes, 2);
  if (total < header_length) return ipv4_error::bad_total_length;
  const std::uint16_t fragment = wire::get16(bytes, 6);
  h.tos = bytes[1];
  h.total_length = total;
  h.id = wire::get16(bytes, 4);
  h.dont_fragment = fragment & 0x4000;
  h.more_fragments = fragment & 0x2000;
  h.fragment_offset = static_cast<std::uint16_t>((fragment & 0x1fff) * 8);
  h.ttl = bytes[8];
  h.protocol = bytes[9];
  h.source = wire::get32(bytes, 12);
  h.destination = wire::get32(bytes, 16);
  h.header_length = static_cast<std::uint8_t>(header_length);
  return ipv4_error::none;
}

}  // namespace

ipv4_error ipv4_header::parse(std::span<const std::uint8_t> bytes, ipv4_header& out,
                              bool checksum_verified) noexcept {
  ipv4_header h;
  if (auto e = read_header(bytes, h); e != ipv4_error::none) return e;
  if (bytes.size() < h.total_length) return ipv4_error::truncated;
  if (!checksum_verified && internet_checksum(bytes.first(h.header_length)) != 0) return ipv4_error::bad_checksum;
  if (std::size_t{h.fragment_offset} + h.data_length() > max_datagram) return ipv4_error::fragment_too_large;
  out = h;
  return ipv4_error::none;
}

ipv4_error ipv4_header::parse_quoted(std::span<const std::uint8_t> bytes, ipv4_header& out) noexcept {
  ipv4_header h;
  if (auto e = read_header(bytes, h); e != ipv4_error::none) return e;
  out = h;
  return ipv4_error::none;
}

void ipv4_header::write(std::span<std::uint8_t> out) const noexcept {
  REEF_ASSERT(out.size() >= min_size, "no room for an IPv4 header");
  REEF_ASSERT(fragment_offset % 8 == 0, "an IPv4 fragment offset is a multiple of 8");
  out[0] = 0x45;
  out[1] = tos;
  wire::put16(out, 2, total_length);
  wire::put16(out, 4, id);
  wire::put16(out, 6,
              static_cast<std::uint16_t>((dont_fragment ? 0x4000 : 0) | (more_fragments ? 0x2000 : 0) |
                                         (fragment_offset / 8)));
  out[8] = ttl;
  out[9] = protocol;
  wire::put16(out, 10, 0);
  wire::put32(out, 12, source);
  wire::put32(out, 16, destination);
  wire::put16(out, 10, internet_checksum(out.first(min_size)));
}

}  // namespace reef::tcpip
