#include "tcpip/arp_message.h"

#include "core/assert.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

using wire::get16;
using wire::get32;
using wire::put16;
using wire::put32;

constexpr std::uint16_t hardware_ethernet = 1;

}  // namespace

arp_error arp_message::parse(std::span<const std::uint8_t> bytes, arp_message& out) noexcept {
  if (bytes.size() < size) return arp_error::truncated;
  if (get16(bytes, 0) != hardware_ethernet || get16(bytes, 2) != static_cast<std::uint16_t>(ether_type::ipv4) ||
      bytes[4] != 6 || bytes[5] != 4) {
    return arp_error::not_ethernet_ipv4;
  }
  const std::uint16_t op = get16(bytes, 6);
  if (op != static_cast<std::uint16_t>(operation::request) && op != static_cast<std::uint16_t>(operation::reply)) {
    return arp_error::bad_operation;
  }
  out.op = static_cast<operation>(op);
  for (std::size_t i = 0; i < 6; ++i) {
    out.sender_mac.bytes[i] = bytes[8 + i];
    out.target_mac.bytes[i] = bytes[18 + i];
  }
  out.sender_ip = get32(bytes, 14);
  out.target_ip = get32(bytes, 24);
  return arp_error::none;
}

void arp_message::write(std::span<std::uint8_t> out) const noexcept {
  REEF_ASSERT(out.size() >= size, "no room for an ARP message");
  put16(out, 0, hardware_ethernet);
  put16(out, 2, static_cast<std::uint16_t>(ether_type::ipv4));
  out[4] = 6;
  out[5] = 4;
  put16(out, 6, static_cast<std::uint16_t>(op));
  for (std::size_t i = 0; i < 6; ++i) {
    out[8 + i] = sender_mac.bytes[i];
    out[18 + i] = target_mac.bytes[i];
  }
  put32(out, 14, sender_ip);
  put32(out, 24, target_ip);
}

}  // namespace reef::tcpip
