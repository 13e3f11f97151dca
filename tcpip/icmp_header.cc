#include "tcpip/icmp_header.h"

#include "core/assert.h"
#include "tcpip/checksum.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

icmp_error icmp_header::parse(std::span<const std::uint8_t> message, icmp_header& out,
                              bool checksum_verified) noexcept {
  if (message.size() < size) return icmp_error::truncated;
  if (!checksum_verified && internet_checksum(message) != 0) return icmp_error::bad_checksum;
  out.type = message[0];
  out.code = message[1];
  out.checksum = wire::get16(message, 2);
  out.id = wire::get16(message, 4);
  out.sequence = wire::get16(message, 6);
  return icmp_error::none;
}

icmp_error icmp_header::parse(const packet& message, icmp_header& out, bool checksum_verified) noexcept {
  if (message.len() < size) return icmp_error::truncated;
  if (!checksum_verified && icmp_checksum(message) != 0) return icmp_error::bad_checksum;
  std::uint8_t header[size];
  wire::copy_front(message, header);
  out.type = header[0];
  out.code = header[1];
  out.checksum = wire::get16(header, 2);
  out.id = wire::get16(header, 4);
  out.sequence = wire::get16(header, 6);
  return icmp_error::none;
}

void icmp_header::write(std::span<std::uint8_t> out) const noexcept {
  REEF_ASSERT(out.size() >= size, "no room for an ICMP header");
  out[0] = type;
  out[1] = code;
  wire::put16(out, 2, checksum);
  wire::put16(out, 4, id);
  wire::put16(out, 6, sequence);
}

std::uint16_t icmp_checksum(const packet& message) noexcept {
  checksummer c;
  c.add(message);
  return c.get();
}

}  // namespace reef::tcpip
