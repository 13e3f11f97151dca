#include "tcpip/dhcp_message.h"

#include <algorithm>

#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

enum option : std::uint8_t {
  pad = 0,
  subnet_mask = 1,
  router = 3,
  dns = 6,
  requested_address = 50,
  lease_time = 51,
  message_type = 53,
  server_identifier = 54,
  parameter_list = 55,
  renewal_time = 58,
  rebinding_time = 59,
  end = 255,
};

constexpr std::size_t cookie_at = dhcp_message::fixed_size;
constexpr std::size_t options_at = cookie_at + 4;

// A list of addresses: a multiple of 4 bytes, at least one.
bool read_addresses(std::span<const std::uint8_t> value, std::vector<std::uint32_t>& out) {
  if (value.empty() || value.size() % 4 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < value.size(); i += 4) out.push_back(wire::get32(value, i));
  return true;
}

bool read_address(std::span<const std::uint8_t> value, std::uint32_t& out) {
  if (value.size() != 4) return false;
  out = wire::get32(value, 0);
  return true;
}

}  // namespace

dhcp_error dhcp_message::parse(std::span<const std::uint8_t> b, dhcp_message& out) {
  if (b.size() < options_at) return dhcp_error::truncated;
  if (b[0] != 2 || b[1] != 1 || b[2] != 6) return dhcp_error::not_a_reply;
  if (wire::get32(b, cookie_at) != magic_cookie) return dhcp_error::bad_cookie;
  dhcp_message m;
  m.xid = wire::get32(b, 4);
  m.secs = wire::get16(b, 8);
  m.broadcast = (wire::get16(b, 10) & 0x8000) != 0;
  m.ciaddr = wire::get32(b, 12);
  m.yiaddr = wire::get32(b, 16);
  m.siaddr = wire::get32(b, 20);
  m.giaddr = wire::get32(b, 24);
  std::copy_n(b.begin() + 28, 6, m.chaddr.bytes.begin());
  bool typed = false;
  std::size_t at = options_at;
  while (at < b.size()) {
    const std::uint8_t code = b[at++];
    if (code == pad) continue;
    if (code == end) break;
    if (at >= b.size()) return dhcp_error::bad_option;
    const std::size_t length = b[at++];
    if (length > b.size() - at) return dhcp_error::bad_option;
    auto value = b.subspan(at, length);
    at += length;
    std::uint32_t x = 0;
    switch (code) {
      case message_type:
        if (length != 1 || value[0] < 1 || value[0] > 8) return dhcp_error::bad_option;
        m.type = static_cast<dhcp_type>(value[0]);
        typed = true;
        break;
      case subnet_mask: {
        if (!read_address(value, x)) return dhcp_error::bad_option;
        const std::uint32_t host_bits = ~x;
        if ((host_bits & (host_bits + 1)) != 0 || x == 0) return dhcp_error::bad_netmask;
        m.netmask = x;
        break;
      }
      case router:
        if (!read_addresses(value, m.routers)) return dhcp_error::bad_option;
        break;
      case dns:
        if (!read_addresses(value, m.dns_servers)) return dhcp_error::bad_option;
        break;
      case server_identifier:
        if (!read_address(value, m.server_id)) return dhcp_error::bad_option;
        break;
      case requested_address:
        if (!read_address(value, m.requested_ip)) return dhcp_error::bad_option;
        break;
      case lease_time:
        if (!read_address(value, x)) return dhcp_error::bad_option;
        m.lease_seconds = x;
        break;
      case renewal_time:
        if (!read_address(value, x)) return dhcp_error::bad_option;
        m.renew_seconds = x;
        break;
      case rebinding_time:
        if (!read_address(value, x)) return dhcp_error::bad_option;
        m.rebind_seconds = x;
        break;
      default:
        break;  // an option the client does not use
    }
  }
  if (!typed) return dhcp_error::no_type;
  out = std::move(m);
  return dhcp_error::none;
}

std::vector<std::uint8_t> dhcp_message::write() const {
  std::vector<std::uint8_t> b(options_at, 0);
  b[0] = 1;  // BOOTREQUEST
  b[1] = 1;  // Ethernet
  b[2] = 6;
  wire::put32(b, 4, xid);
  wire::put16(b, 8, secs);
  wire::put16(b, 10, broadcast ? 0x8000 : 0);
  wire::put32(b, 12, ciaddr);
  wire::put32(b, 16, yiaddr);
  wire::put32(b, 20, siaddr);
  wire::put32(b, 24, giaddr);
  std::copy(chaddr.bytes.begin(), chaddr.bytes.end(), b.begin() + 28);
  wire::put32(b, cookie_at, magic_cookie);
  auto add = [&b](std::uint8_t code, std::span<const std::uint8_t> value) {
    b.push_back(code);
    b.push_back(static_cast<std::uint8_t>(value.size()));
    b.insert(b.end(), value.begin(), value.end());
  };
  auto add_address = [&add](std::uint8_t code, std::uint32_t a) {
    std::uint8_t v[4];
    wire::put32(std::span<std::uint8_t>(v, 4), 0, a);
    add(code, std::span<const std::uint8_t>(v, 4));
  };
  const std::uint8_t t = static_cast<std::uint8_t>(type);
  add(message_type, std::span<const std::uint8_t>(&t, 1));
  if (requested_ip != 0) add_address(requested_address, requested_ip);
  if (server_id != 0) add_address(server_identifier, server_id);
  const std::uint8_t wanted[] = {subnet_mask, router, dns, lease_time, renewal_time, rebinding_time};
  add(parameter_list, wanted);
  b.push_back(end);
  if (b.size() < 300) b.resize(300, 0);
  return b;
}

}  // namespace reef::tcpip
