// One shard's IPv4 over Ethernet on one device queue: the receive path
// (Ethernet, ARP, IPv4 with reassembly, dispatch by protocol, ICMP echo
// answered) and the send path (route, ARP resolution, fragmentation,
// Ethernet). The transports (UDP, then TCP) register a handler for their
// protocol and send through send().
//
//   ipv4_interface ip(link.end(0), link.end(0).open_queue(0),
//                     {.address = 0x0a000001, .netmask = 0xffffff00});
//   ip.set_handler(17, [](const ipv4_header& h, packet&& data, checksum_status) { ... });
//   ip.start();                                  // polls from this shard's reactor
//   co_await ip.send(0x0a000002, 17, std::move(datagram));
//   co_await ip.stop();
//
// Everything here runs on the shard that called start(). Every frame that
// is dropped is counted by its reason (stats()).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "core/gate.h"
#include "core/reactor.h"
#include "core/timer.h"
#include "net/packet.h"
#include "tcpip/arp_cache.h"
#include "tcpip/device.h"
#include "tcpip/icmp_header.h"
#include "tcpip/ipv4_header.h"
#include "tcpip/ipv4_reassembly.h"

namespace reef::tcpip {

struct interface_config {
  /// Host byte order; 0: none yet (DHCP): only broadcasts are sent and
  /// received until set_address().
  std::uint32_t address = 0;
  std::uint32_t netmask = 0xffffff00;
  std::optional<std::uint32_t> gateway;  // for destinations off the network
  arp_limits arp;
  reassembly_limits reassembly;
  /// How often ARP retries and reassembly timeouts are looked at.
  std::chrono::milliseconds tick{50};
  std::uint8_t ttl = 64;
  /// IP identifiers: id_first, then every id_step (each shard its own
  /// residue, so that two shards' datagrams to one peer never share one).
  std::uint16_t id_first = 1;
  std::uint16_t id_step = 1;
  /// Whether start() announces the address (a gratuitous ARP): one
  /// interface per device does (a stack's other shards do not).
  bool announce = true;
};

/// What a transport asks of the device for a datagram it sends, where
/// the device offers it (device_offloads; the transport looks first).
struct l4_offload {
  /// The transport's checksum field holds the pseudo header's folded sum
  /// (checksummer::partial()): the device finishes the checksum. (Where
  /// the datagram must be fragmented, send() finishes it itself.)
  bool checksum = false;
  std::uint8_t header_length = 0;  // the transport header's, options included
  /// TSO: the device cuts the TCP data into segments of this many bytes
  /// (the datagram may then be longer than the MTU); 0: one frame.
  std::uint16_t segment_size = 0;
};

struct interface_stats {
  std::uint64_t rx_frames = 0;
  std::uint64_t not_ours = 0;          // another host's MAC, or a group we are not in
  std::uint64_t ethernet_errors = 0;   // truncated, or an 802.3 length
  std::uint64_t unknown_type = 0;      // neither ARP nor IPv4
  std::uint64_t arp_errors = 0;
  std::uint64_t arp_replies_sent = 0;
  std::uint64_t ipv4_errors = 0;       // see ipv4_error: bad checksum, lengths, ...
  std::uint64_t checksum_bad = 0;      // the device said so
  std::uint64_t not_our_address = 0;
  std::uint64_t unknown_protocol = 0;  // no handler
  std::uint64_t echo_replies_sent = 0;
  std::uint64_t tx_frames = 0;
  std::uint64_t tx_refused = 0;        // the queue had no room: dropped
  std::uint64_t unroutable = 0;        // no route, or ARP found no one
  std::uint64_t too_big = 0;           // don't-fragment and over the MTU
  std::uint64_t bad_source = 0;        // a source no host has (broadcast, multicast, 0, loopback, ours)
  std::uint64_t no_memory = 0;         // frames dropped for want of memory
  std::uint64_t icmp_errors = 0;       // unreachables and time-exceeded passed to a transport
  std::uint64_t icmp_errors_dropped = 0;  // ones quoting no datagram of ours, or for no transport

  /// Adds another shard's counts (a stack's total).
  interface_stats& operator+=(const interface_stats& o) noexcept;
};

class ipv4_interface {
 public:
  /// A protocol's datagrams addressed to us: the header, the data, and
  /// whether the device checked the transport's checksum (good: it holds;
  /// unknown: the transport checks). (The data by rvalue reference: a
  /// packet is ~100 bytes, and on the receive path every layer would move
  /// it again.)
  using protocol_handler = noncopyable_function<void(const ipv4_header&, packet&&, checksum_status)>;
  /// An ICMP error (destination unreachable, time exceeded) about a
  /// datagram we sent: the ICMP header, the quoted IPv4 header and the
  /// quoted bytes of its data (at least 8: the transport's ports).
  using error_handler =
      noncopyable_function<void(const icmp_header&, const ipv4_header& quoted, std::span<const std::uint8_t> data)>;
  /// An address learned from an ARP message addressed to us (a reply to
  /// our request, a request for our address), for a stack whose other
  /// shards keep caches of their own.
  using arp_listener = noncopyable_function<void(std::uint32_t ip, ethernet_address mac, bool for_us)>;

  /// Throws std::invalid_argument for an address no host has (the
  /// network's own, its broadcast, loopback, a group), a netmask that is
  /// not a prefix, or a gateway off the network.
  ipv4_interface(device& dev, std::unique_ptr<device_queue> queue, interface_config config);
  ~ipv4_interface();
  ipv4_interface(const ipv4_interface&) = delete;
  ipv4_interface& operator=(const ipv4_interface&) = delete;

  /// Polls the queue from this shard's reactor from now on, and announces
  /// the address (a gratuitous ARP).
  void start();
  /// Stops polling once the sends in flight are done (answered, or
  /// failed after the ARP retries); call it before destroying a started
  /// interface.
  future<> stop();

  void set_handler(std::uint8_t protocol, protocol_handler h);
  /// Takes a new address (DHCP), announced as at start. Throws
  /// std::invalid_argument as the constructor does.
  void set_address(std::uint32_t address, std::uint32_t netmask, std::optional<std::uint32_t> gateway);
  /// Where ICMP errors about `protocol`'s datagrams go (without one they
  /// are counted and dropped).
  void set_error_handler(std::uint8_t protocol, error_handler h);
  void set_arp_listener(arp_listener l) { _arp_listener = std::move(l); }
  /// Learns what another shard's interface on the same device learned
  /// (see arp_listener): waiting sends to `ip` go.
  void learn_neighbour(std::uint32_t ip, ethernet_address mac, bool for_us);

  /// Takes one received frame as polling does: for the fuzz target and
  /// for tests that feed frames without a device. (Replies need start().)
  void process(received_frame f) noexcept { receive(f); }

  /// Sends `data` as the data of an IPv4 datagram: routed (on the network,
  /// else through the gateway), its next hop resolved, fragmented to the
  /// MTU. Resolves once the frames are handed to the device; fails with
  /// std::system_error: ENETUNREACH (no route), EHOSTUNREACH (no ARP
  /// reply), EMSGSIZE (don't-fragment and too big), ENOBUFS (too many
  /// packets wait for addresses).
  /// (`data` by rvalue reference, as for the handlers: taken, unless the
  /// send fails at once.) `offload`: what the device is to finish, where
  /// info().offloads says it can.
  future<> send(std::uint32_t destination, std::uint8_t protocol, packet&& data, bool dont_fragment = false,
                l4_offload offload = {});

  const interface_stats& stats() const noexcept { return _stats; }
  const arp_cache& arp() const noexcept { return _arp; }
  const ipv4_reassembler& reassembly() const noexcept { return _reassembly; }
  std::uint32_t address() const noexcept { return _config.address; }
  std::uint32_t netmask() const noexcept { return _config.netmask; }
  std::optional<std::uint32_t> gateway() const noexcept { return _config.gateway; }
  const device_info& info() const noexcept { return _info; }

 private:
  class queue_poller;

  static void check_address(std::uint32_t address, std::uint32_t netmask, std::optional<std::uint32_t> gateway);
  bool poll() noexcept;
  void receive(received_frame& f) noexcept;
  void receive_arp(std::span<const std::uint8_t> payload);
  // (receive_ipv4, deliver and transmit: inline, defined in the .cc,
  // which alone calls them.)
  inline void receive_ipv4(received_frame& f, std::size_t ip_at);
  inline void deliver(const ipv4_header& h, packet&& data, checksum_status checksum);
  void deliver_icmp_error(const ipv4_header& h, const icmp_header& icmp, const packet& data);
  void answer_echo(const ipv4_header& h, packet data) noexcept;
  void send_arp(std::uint16_t operation, ethernet_address target_mac, std::uint32_t target_ip) noexcept;
  // Hands `frame` (its IP part) to the device behind an Ethernet header.
  inline void transmit(packet&& frame, ethernet_address destination, std::uint16_t type,
                       const tx_offload& offload = {}) noexcept;
  void transmit_datagrams(std::vector<packet> datagrams, ethernet_address destination,
                          const tx_offload& offload) noexcept;
  bool on_network(std::uint32_t ip) const noexcept { return (ip & _config.netmask) == (_config.address & _config.netmask); }
  bool is_broadcast(std::uint32_t ip) const noexcept {
    return ip == 0xffffffff || (on_network(ip) && (ip | _config.netmask) == 0xffffffff);
  }

  device& _device;
  const device_info& _info;  // the device's (a virtual call per frame otherwise)
  std::unique_ptr<device_queue> _queue;
  interface_config _config;
  arp_cache _arp;
  ipv4_reassembler _reassembly;
  std::array<protocol_handler, 256> _handlers;
  std::array<error_handler, 256> _error_handlers;
  arp_listener _arp_listener;
  std::unique_ptr<queue_poller> _poller;
  timer<lowres_clock> _tick;
  gate _sends;
  std::uint16_t _next_id;
  std::vector<received_frame> _batch;
  interface_stats _stats;
  bool _started = false;
  bool _stopped = false;
  std::atomic<bool> _arrived{false};  // set by the queue's notification, from any thread
};

}  // namespace reef::tcpip
