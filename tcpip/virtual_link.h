// Devices connected in one process, for tests and benchmarks without the
// kernel: two back to back, or more on one segment (a switch: a frame for
// one end's MAC goes to that end, a broadcast or an unknown address to
// every other end). A frame arrives at the receive queue its RSS hash
// picks. The link can lose, duplicate, reorder, corrupt, delay and rate
// limit frames, each fault from a seeded random generator (a failing run
// is reproduced from its seed), write what crossed it to a pcap file
// (`tcpdump -r` reads it), and offer a NIC's checksum and segmentation
// offloads.
//
//   virtual_link link({.queues = 2, .faults = {.loss = 0.1, .seed = 7}});
//   auto q = link.end(0).open_queue(0);   // on the shard that drives it
//
// Each end's queues may be driven by different shards: the link copies a
// frame as it crosses (a wire does), so each side frees its own memory.
// A test device: one mutex guards the link.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tcpip/device.h"
#include "tcpip/toeplitz.h"

namespace reef::tcpip {

/// What the link does to frames, each with its probability (0 to 1).
struct link_faults {
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;  // held back: after the next frame, or 16 polls of the receiving end
  double corrupt = 0;  // one byte flipped
  /// Every frame arrives this much later (a receiving shard polls until
  /// it is due).
  std::chrono::microseconds delay{0};
  /// Bytes a second each end may send (0: no limit): frames queue behind
  /// each other at that rate, and past the receive queue's room are
  /// dropped (counted as overflowed).
  std::uint64_t rate_bytes_per_second = 0;
  std::uint64_t seed = 1;
};

struct virtual_link_options {
  unsigned ends = 2;
  unsigned queues = 1;  // per end, unless queues_per_end says
  /// Each end's queue count (as many entries as ends), if they differ.
  std::vector<unsigned> queues_per_end;
  std::uint16_t mtu = 1500;
  /// Whether the ends supply an RSS hash per frame, and with what key (a
  /// key other than the stack's gives a device whose hash disagrees with
  /// the software one).
  bool rss_hash = true;
  toeplitz_key rss_key = default_toeplitz_key;
  /// The key the ends say they hash with (device_info::rss_key), if not
  /// rss_key: a device that lies, whose hash disagrees with the stack's.
  std::optional<toeplitz_key> advertised_rss_key;
  /// What every end offers, done as a NIC would: tx_checksum (the link
  /// finishes checksums left to it), tso (it cuts long TCP segments),
  /// and on the receiving side, as veth passes frames on without faults:
  /// rx_checksum_verified (a frame whose checksum was left undone comes as
  /// checked, never summed) and lro (a long segment arrives whole). With
  /// faults, frames cross as a wire carries them: cut, summed.
  device_offloads offloads;
  link_faults faults;
  /// Where to write a pcap file of every frame that crossed; "" for none.
  std::string pcap_path;
  /// Frames a receive queue holds, at most; more are dropped and counted.
  std::size_t queue_frames_max = 1024;
};

/// What happened on the link, both directions.
struct virtual_link_stats {
  std::uint64_t carried = 0;  // frames transmitted into the link
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t overflowed = 0;  // a receive queue was full
  std::uint64_t too_long = 0;    // over the MTU plus the Ethernet header
};

class virtual_link {
 public:
  /// Throws std::invalid_argument for fewer than 2 ends (or more than
  /// 254), 0 queues, queues_per_end not one per end, a probability
  /// outside [0, 1], a negative delay, or a pcap file that cannot be
  /// created.
  explicit virtual_link(virtual_link_options options = {});
  ~virtual_link();
  virtual_link(const virtual_link&) = delete;
  virtual_link& operator=(const virtual_link&) = delete;

  /// End `side` (< ends): MAC 02:00:00:00:00:01 for end 0, :02 for end
  /// 1, and so on. Throws std::invalid_argument past the last.
  device& end(unsigned side);
  virtual_link_stats stats() const;

  struct impl;

 private:
  std::unique_ptr<impl> _impl;
};

}  // namespace reef::tcpip
