// Two devices back to back in one process, for tests and benchmarks
// without the kernel: a frame one end transmits arrives at the other's
// receive queue that its RSS hash picks. The link can lose, duplicate,
// reorder and corrupt frames, each from a seeded random generator (a
// failing run is reproduced from its seed), and write what crossed it to
// a pcap file (`tcpdump -r` reads it).
//
//   virtual_link link({.queues = 2, .faults = {.loss = 0.1, .seed = 7}});
//   auto q = link.end(0).open_queue(0);   // on the shard that drives it
//
// Each end's queues may be driven by different shards: the link copies a
// frame as it crosses (a wire does), so each side frees its own memory.
// A test device: one mutex guards the link.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "tcpip/device.h"
#include "tcpip/toeplitz.h"

namespace reef::tcpip {

/// What the link does to frames, each with its probability (0 to 1).
struct link_faults {
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;  // held back: after the next frame, or 16 polls of the receiving end
  double corrupt = 0;  // one byte flipped
  std::uint64_t seed = 1;
};

struct virtual_link_options {
  unsigned queues = 1;  // per end
  std::uint16_t mtu = 1500;
  /// Whether the ends supply an RSS hash per frame, and with what key (a
  /// key other than the stack's gives a device whose hash disagrees with
  /// the software one).
  bool rss_hash = true;
  toeplitz_key rss_key = default_toeplitz_key;
  /// The key the ends say they hash with (device_info::rss_key), if not
  /// rss_key: a device that lies, whose hash disagrees with the stack's.
  std::optional<toeplitz_key> advertised_rss_key;
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
  /// Throws std::invalid_argument for 0 queues, a probability outside
  /// [0, 1], offloads (the link performs none), or a pcap file that
  /// cannot be created.
  explicit virtual_link(virtual_link_options options = {});
  ~virtual_link();
  virtual_link(const virtual_link&) = delete;
  virtual_link& operator=(const virtual_link&) = delete;

  /// End 0 (MAC 02:00:00:00:00:01) or 1 (02:00:00:00:00:02).
  device& end(unsigned side);
  virtual_link_stats stats() const;

  struct impl;

 private:
  std::unique_ptr<impl> _impl;
};

}  // namespace reef::tcpip
