#include "tcpip/udp_header.h"

#include "core/assert.h"
#include "tcpip/checksum.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

udp_error udp_header::parse_pieces(const packet& payload, std::uint32_t source, std::uint32_t destination,
                                   udp_header& out, bool checksum_verified) noexcept {
  if (payload.len() < size) return udp_error::truncated;
  std::uint8_t header[size];
  wire::copy_front(payload, header);
  const std::uint16_t length = wire::get16(header, 4);
  if (length < size) return udp_error::bad_length;
  if (length > payload.len()) return udp_error::truncated;
  const std::uint16_t checksum = wire::get16(header, 6);
  if (checksum != 0 && !checksum_verified) {
    checksummer c;
    add_udp_pseudo_header(c, source, destination, length);
    c.add(payload, length);
    if (c.get() != 0) return udp_error::bad_checksum;
  }
  out.source_port = wire::get16(header, 0);
  out.destination_port = wire::get16(header, 2);
  out.length = length;
  out.checksum = checksum;
  return udp_error::none;
}

std::uint16_t udp_checksum(std::uint32_t source, std::uint32_t destination, const packet& datagram) noexcept {
  REEF_ASSERT(datagram.len() <= 65535, "a UDP datagram longer than its length field can say");
  checksummer c;
  add_udp_pseudo_header(c, source, destination, static_cast<std::uint16_t>(datagram.len()));
  c.add(datagram);
  const std::uint16_t sum = c.get();
  return sum == 0 ? 0xffff : sum;
}

}  // namespace reef::tcpip
