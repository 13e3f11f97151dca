// DHCP messages (RFC 2131, options RFC 2132) as the client sends and
// reads them: the fixed BOOTP part, the magic cookie, and the options the
// client uses. Parsing treats the datagram as hostile: every length is
// checked against what is there, and a message the client cannot use is
// refused with the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tcpip/ethernet.h"

namespace reef::tcpip {

enum class dhcp_type : std::uint8_t {
  discover = 1,
  offer = 2,
  request = 3,
  decline = 4,
  ack = 5,
  nak = 6,
  release = 7,
};

enum class dhcp_error : std::uint8_t {
  none,
  truncated,        // shorter than the fixed part and the cookie
  not_a_reply,      // op is not BOOTREPLY, or not Ethernet addresses
  bad_cookie,       // no DHCP magic cookie: plain BOOTP
  bad_option,       // an option runs past the end, or one the client uses has a bad length
  no_type,          // no message type option
  bad_netmask,      // a subnet mask that is not a prefix
};

struct dhcp_message {
  static constexpr std::uint16_t server_port = 67;
  static constexpr std::uint16_t client_port = 68;
  static constexpr std::size_t fixed_size = 236;  // BOOTP, up to the options
  static constexpr std::uint32_t magic_cookie = 0x63825363;

  dhcp_type type = dhcp_type::discover;
  std::uint32_t xid = 0;
  std::uint16_t secs = 0;
  bool broadcast = false;        // ask the server to broadcast its reply
  std::uint32_t ciaddr = 0;      // the client's address, when it has one
  std::uint32_t yiaddr = 0;      // "your" address: the one offered
  std::uint32_t siaddr = 0;
  std::uint32_t giaddr = 0;
  ethernet_address chaddr;
  // Options (0 / empty when absent).
  std::uint32_t server_id = 0;        // 54
  std::uint32_t requested_ip = 0;     // 50
  std::optional<std::uint32_t> netmask;   // 1
  std::vector<std::uint32_t> routers;     // 3
  std::vector<std::uint32_t> dns_servers; // 6
  std::optional<std::uint32_t> lease_seconds;   // 51
  std::optional<std::uint32_t> renew_seconds;   // 58 (T1)
  std::optional<std::uint32_t> rebind_seconds;  // 59 (T2)

  /// Reads a server's reply from a UDP datagram's data. Throws only
  /// std::bad_alloc (its address lists).
  static dhcp_error parse(std::span<const std::uint8_t> bytes, dhcp_message& out);
  /// A client's message: the fixed part, the cookie, the message type,
  /// the requested address and server (if set), the parameters it asks
  /// for, the end. Padded to the 300 bytes BOOTP relays expect.
  std::vector<std::uint8_t> write() const;
};

}  // namespace reef::tcpip
