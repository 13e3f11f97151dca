// Which shard a flow belongs to, for a stack whose shards share one
// device. Every flow (IPv4 source and destination address and port, and
// protocol) has one shard, where its sockets live; a received frame is
// handled there and nowhere else.
//
// The hash is the device's RSS hash where it supplies one, or the same
// Toeplitz hash computed here with the device's key (tcpip/toeplitz.h): a
// flow lands on the same shard whoever hashed it. A flow table maps the
// hash's low bits to a shard. Its entries follow the device's redirection
// table: an entry whose hash the device puts in queue q names q's owner
// (shard q) or one of the shards that own no queue and lean on q (shard s
// >= queues with s % queues == q), so that a queue's owner forwards only
// to its own followers. --hw-queue-weight says how big a share the owner
// keeps (1: the same as each follower, 0: none while it has followers).
//
// Exceptions to the hash. UDP to an ephemeral port goes to the shard that
// gave the port out: port p of the range [first, last] belongs to shard
// (p - first) % shards, and a shard binds only its own ports (the peer is
// not known when the port is chosen, so no hash could pick it). UDP to
// the DHCP client's port (68) goes to shard 0, where the client runs.
// IP fragments carry no ports: they are hashed by their addresses, and
// the shard that reassembles a datagram hands it on if its ports name
// another (shard_of_datagram). ICMP errors go to the shard of the flow of
// the datagram they quote.
//
// Immutable once made: every shard may read one.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "tcpip/device.h"
#include "tcpip/toeplitz.h"

namespace reef::tcpip {

struct steering_config {
  unsigned shards = 1;
  double hw_queue_weight = 1.0;  // in [0, 1]
  std::uint16_t ephemeral_first = 32768;
  std::uint16_t ephemeral_last = 60999;
};

class flow_steering {
 public:
  /// Throws std::invalid_argument: no shards, a device with more queues
  /// than there are shards (frames for the extra queues would have no
  /// one to poll them), a weight outside [0, 1], an empty port range.
  flow_steering(const device_info& info, steering_config config);

  unsigned shards() const noexcept { return _config.shards; }
  unsigned queues() const noexcept { return _queues; }
  /// Whether `shard` drives a queue of its own (queue number `shard`).
  bool owns_queue(unsigned shard) const noexcept { return shard < _queues; }
  /// The queue owner that transmits for `shard` (itself if it owns one).
  unsigned transmitter_of(unsigned shard) const noexcept { return shard % _queues; }

  /// The shard of a received Ethernet frame (`device_hash`: the device's,
  /// if it gave one). Frames that are not IPv4 (ARP), and ones too short
  /// to say, stay on `here`.
  unsigned shard_of_frame(std::span<const std::uint8_t> frame, std::optional<std::uint32_t> device_hash,
                          unsigned here) const noexcept;
  /// The shard of a datagram received from `source`:`source_port` for
  /// `destination`:`destination_port` (UDP or TCP).
  unsigned shard_of_datagram(std::uint8_t protocol, std::uint32_t source, std::uint32_t destination,
                             std::uint16_t source_port, std::uint16_t destination_port) const noexcept;
  /// The shard of a hash (the flow table).
  unsigned shard_of_hash(std::uint32_t hash) const noexcept { return _table[hash & _mask]; }
  /// Whether `port` is an ephemeral port `shard` may give out.
  bool ephemeral_port_of(unsigned shard, std::uint16_t port) const noexcept {
    return port >= _config.ephemeral_first && port <= _config.ephemeral_last &&
           (port - _config.ephemeral_first) % _config.shards == shard;
  }
  const toeplitz_hash& hash() const noexcept { return _hash; }
  const std::vector<std::uint16_t>& table() const noexcept { return _table; }

  static constexpr std::uint16_t dhcp_client_port = 68;

 private:
  // The shard a UDP port names whatever the hash, if it names one.
  std::optional<unsigned> port_owner(std::uint8_t protocol, std::uint16_t destination_port) const noexcept;

  steering_config _config;
  unsigned _queues;
  toeplitz_hash _hash;
  std::vector<std::uint16_t> _table;
  std::uint32_t _mask;
};

}  // namespace reef::tcpip
