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

#include "core/function.h"
#include "net/packet.h"
#include "tcpip/ethernet.h"
#include "tcpip/toeplitz.h"

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
  /// Each received frame comes with the device's RSS hash, computed with
  /// `rss_key` and spread over the queues by `redirection` (entry i: the
  /// queue of hashes whose low bits are i). The stack needs both to pick
  /// local ports whose replies the device sends to the calling shard.
  bool rss_hash = false;
  toeplitz_key rss_key = default_toeplitz_key;
  std::vector<std::uint16_t> redirection;
  /// Buffers one transmitted frame may have (a frame of more pieces is
  /// made one first).
  unsigned tx_segments_max = 32;
};

/// What the device checked of a received frame's checksums.
enum class checksum_status : std::uint8_t {
  unknown,  // not checked: the stack checks
  good,     // the TCP/UDP checksum holds (the stack checks the IPv4 header's itself)
  bad,      // one does not: the stack drops the frame and counts it
};

/// A received frame.
struct received_frame {
  packet frame;                           // the Ethernet frame, header first
  std::optional<std::uint32_t> rss_hash;  // the device's, where it supplies one
  checksum_status checksum = checksum_status::unknown;
};

/// What the device is asked to do to a transmitted frame (where
/// device_offloads says it can): the stack leaves those fields for it.
struct tx_offload {
  std::uint8_t l2_length = 14;  // the Ethernet header's
  std::uint8_t l3_length = 20;  // the IPv4 header's, options included
  std::uint8_t l4_length = 0;   // the TCP/UDP header's (segmentation needs it)
  bool ipv4_checksum = false;   // fill in the IPv4 header's checksum
  bool l4_checksum = false;     // fill in the TCP/UDP checksum (the stack put the pseudo header's sum there)
  std::uint8_t l4_checksum_at = 16;  // where in the TCP/UDP header that checksum is (TCP 16, UDP 6)
  std::uint16_t segment_size = 0;  // TSO: cut the TCP data into segments of this many bytes; 0: none
};

/// A frame to transmit.
struct tx_frame {
  packet frame;
  tx_offload offload;
};

/// A queue's counts (its driving shard's alone: no atomics).
struct device_queue_stats {
  std::uint64_t rx_frames = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_frames = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t tx_refused = 0;  // frames transmit() did not take (no room)
  std::uint64_t rx_dropped = 0;  // frames for this queue the device had no room for
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
  virtual std::size_t transmit(std::span<tx_frame> frames) = 0;
  /// Called, from any thread, when frames arrive for this queue after
  /// receive() found none: the owner wakes its reactor (a sleeping shard
  /// learns of frames without polling). Set before the queue is driven.
  /// Devices whose arrivals the reactor sees itself (a file descriptor in
  /// its I/O backend), or that are polled (polled()), may never call it.
  virtual void on_arrival(noncopyable_function<void()> notify) = 0;
  /// The queue never says when frames arrive (a DPDK poll-mode driver's):
  /// the shard that drives it polls it and does not sleep.
  virtual bool polled() const noexcept { return false; }
  /// Hands the device what transmit() took and still holds (a device that
  /// sends in bursts): called before the queue stops being polled.
  virtual void flush() noexcept {}
  const device_queue_stats& stats() const noexcept { return _stats; }

 protected:
  device_queue_stats _stats;
};

class device {
 public:
  virtual ~device() = default;
  /// What the device is. The same object for the device's life (the
  /// stack keeps the reference rather than call this per frame).
  virtual const device_info& info() const noexcept = 0;
  /// Queue `index` (< info().queues), for the shard that will drive it;
  /// once per index. Throws std::invalid_argument otherwise.
  virtual std::unique_ptr<device_queue> open_queue(unsigned index) = 0;
};

}  // namespace reef::tcpip
