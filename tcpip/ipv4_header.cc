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

ipv4_error ipv4_header::parse_quoted(std::span<const std::uint8_t> bytes, ipv4_header& out) noexcept {
  ipv4_header h;
  if (auto e = read(bytes, h); e != ipv4_error::none) return e;
  out = h;
  return ipv4_error::none;
}

}  // namespace reef::tcpip
