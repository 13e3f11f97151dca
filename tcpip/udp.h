// UDP on the native stack (RFC 768): one shard's sockets on one IPv4
// interface, behind the same udp_channel that the POSIX stack gives
// (net/api.h), so that programs keep their code. Datagrams carry a
// checksum (verified on receive unless zero, computed on send), go in
// pieces when over the MTU (the interface fragments and reassembles), and
// wait in a bounded queue per socket (overflow dropped and counted). A
// datagram for a port nobody has is answered with ICMP port unreachable,
// at most so many a second.
#pragma once

#include <netinet/in.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>

#include "core/function.h"
#include "core/timer.h"
#include "net/api.h"
#include "tcpip/ipv4_interface.h"

namespace reef::tcpip {

/// The socket address of IPv4 address `ip` (host byte order) and `port`.
inline socket_address ipv4_socket_address(std::uint32_t ip, std::uint16_t port) noexcept {
  in_addr a{};
  a.s_addr = htonl(ip);
  return socket_address(inet_address(a), port);
}

struct udp_limits {
  std::size_t receive_queue_max = 256;  // datagrams a socket holds unread
  std::uint16_t ephemeral_first = 32768;
  std::uint16_t ephemeral_last = 60999;
  unsigned unreachables_per_second = 100;
};

struct udp_stats {
  std::uint64_t received = 0;
  std::uint64_t sent = 0;
  std::uint64_t errors = 0;        // truncated, bad length or checksum
  std::uint64_t no_port = 0;       // nobody bound: port unreachable (if not rate limited)
  std::uint64_t unreachables_sent = 0;
  std::uint64_t queue_full = 0;    // dropped: the socket's queue was full
  std::uint64_t icmp_errors = 0;   // unreachables reported to a socket

  /// Adds another shard's counts.
  udp_stats& operator+=(const udp_stats& o) noexcept;
};

class udp_layer {
 public:
  /// Takes the interface's UDP datagrams (its protocol 17 handler).
  explicit udp_layer(ipv4_interface& ip, udp_limits limits = {});
  ~udp_layer();
  udp_layer(const udp_layer&) = delete;
  udp_layer& operator=(const udp_layer&) = delete;

  /// A socket bound to `local`'s port (0: an ephemeral port), on the
  /// interface's address (`local`'s address must be it or 0.0.0.0).
  /// Throws std::system_error: EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT.
  ///
  /// An ICMP error about a datagram the socket sent (port or host
  /// unreachable, time exceeded) waits in its queue like a datagram:
  /// the receive() that meets it fails with std::system_error
  /// (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE or ETIMEDOUT,
  /// naming the peer), and the channel goes on.
  udp_channel make_channel(const socket_address& local);

  /// Ephemeral ports this layer may give out (a sharded stack gives each
  /// shard those whose replies come back to it); all by default.
  void set_ephemeral_filter(noncopyable_function<bool(std::uint16_t)> f) { _ephemeral_ok = std::move(f); }

  /// A UDP datagram for us (the interface's handler calls it; a sharded
  /// stack calls it with datagrams another shard received).
  void receive(const ipv4_header& h, packet&& data, checksum_status checksum = checksum_status::unknown) noexcept;
  /// An ICMP error about a datagram we sent (the interface's error
  /// handler calls it).
  void receive_error(const icmp_header& icmp, const ipv4_header& quoted, std::span<const std::uint8_t> data) noexcept;

  const udp_stats& stats() const noexcept { return _stats; }

  struct socket;  // a bound port's state (udp.cc)

 private:
  void port_unreachable(const ipv4_header& h, const packet& data) noexcept;

  ipv4_interface& _ip;
  udp_limits _limits;
  // Bound ports: 256 pages of 256, a page made when a port in it is first
  // bound. A lookup is two loads: no hashing, no division.
  class port_table {
   public:
    socket* find(std::uint16_t port) const noexcept {
      const auto& page = _pages[port >> 8];
      return page ? (*page)[port & 0xff] : nullptr;
    }
    bool contains(std::uint16_t port) const noexcept { return find(port) != nullptr; }
    /// Throws std::bad_alloc. REQUIRES: !contains(port).
    void insert(std::uint16_t port, socket* s);
    void erase(std::uint16_t port) noexcept;
    bool empty() const noexcept { return _count == 0; }

   private:
    std::array<std::unique_ptr<std::array<socket*, 256>>, 256> _pages;
    std::size_t _count = 0;
  };

  port_table _ports;
  std::uint16_t _next_ephemeral;
  noncopyable_function<bool(std::uint16_t)> _ephemeral_ok;
  udp_stats _stats;
  // Port unreachables: a budget refilled once a second.
  lowres_clock::time_point _budget_since{};
  unsigned _budget_used = 0;

  friend class native_udp_channel;
};

}  // namespace reef::tcpip
