// A network device as the native stack drives it. A device has one or
// more queues, each a receive and a transmit side that one shard drives
// from its reactor (in batches, without waiting: a poller asks). The device
// says what it is (MAC, MTU, queues, offloads, whether it supplies an RSS
// hash per frame); the stack adapts: where the device supplies no hash it
// computes the Toeplitz hash itself (tcpip/toeplitz.h), where it verifies
// checksums the stack does not again.
//
// Frames are packets. A received frame references the device's buffer
// where the device can lend it (no copy); a transmitted packet's fragments
// go to the device as they are (scatter-gather). A frame's memory is
// freed on the shard that owns it: a device whose frames cross shards
// (the virtual link) hands each side its own.
//
// Implementations: the TAP device, the in-process virtual link
// (tcpip/virtual_link.h), DPDK (//dpdk).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "net/packet.h"
#include "tcpip/ethernet.h"

namespace reef::tcpip {

/// What a device does for the stack.
struct device_offloads {
  bool rx_checksum_verified = false;  // received IPv4/UDP/TCP checksums were checked
  bool tx_checksum = false;           // it fills in checksums on transmit
  bool tso = false;                   // it segments large TCP sends (TSO/GSO)
  bool lro = false;                   // it merges received TCP segments (LRO/GRO)
};

struct device_info {
  ethernet_address mac;
  std::uint16_t mtu = 1500;  // the largest IP datagram a frame carries
  unsigned queues = 1;       // hardware queues (queue pairs)
  device_offloads offloads;
  bool rss_hash = false;  // each received frame comes with the device's RSS hash
};

/// A received frame.
struct received_frame {
  packet frame;                           // the Ethernet frame, header first
  std::optional<std::uint32_t> rss_hash;  // the device's, where it supplies one
};

/// A queue's counts (its driving shard's alone: no atomics).
struct device_queue_stats {
  std::uint64_t rx_frames = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_frames = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_refused = 0;  // frames transmit() did not take (no room)
};

/// One queue pair, driven by one shard.
class device_queue {
 public:
  virtual ~device_queue() = default;
  /// Appends to `out` up to `max` frames that have arrived, without
  /// waiting; how many.
  virtual std::size_t receive(std::vector<received_frame>& out, std::size_t max) = 0;
  /// Hands frames to the device, in order, without waiting; how many it
  /// took from the front (and moved from). The rest found no room now:
  /// the caller retries or drops them, and counts what it drops.
  virtual std::size_t transmit(std::span<packet> frames) = 0;
  const device_queue_stats& stats() const noexcept { return _stats; }

 protected:
  device_queue_stats _stats;
};

class device {
 public:
  virtual ~device() = default;
  virtual const device_info& info() const noexcept = 0;
  /// Queue `index` (< info().queues), for the shard that will drive it;
  /// once per index. Throws std::invalid_argument otherwise.
  virtual std::unique_ptr<device_queue> open_queue(unsigned index) = 0;
};

}  // namespace reef::tcpip
