// A DPDK port as a native stack device (tcpip/device.h): the poll-mode
// driver puts frames straight into user memory, one receive and one
// transmit queue per shard, with no interrupts and no system calls.
//
//   dpdk::start_eal({...});                       // main thread, once
//   dpdk::dpdk_device port({.port = 0, .queues = smp::count});
//   ... inside smp::run:
//   tcpip::native_network net(port, {...});
//
// Memory: one mbuf pool per queue, on the NUMA node of the shard that
// drives it, sized from the ring depths; DPDK takes it from hugepages or,
// with --no-huge, from anonymous memory.
//
// Receive: a received mbuf becomes a packet fragment without a copy (a
// chain, a packet of several); the packet's deleter lives in the mbuf's
// private area and returns the mbuf to its pool, on the shard that owns
// the frame. When the pool runs low (the stack or the application holds
// many received buffers) frames are copied and their mbufs go back at
// once, so that the receive ring never starves.
//
// Transmit: headers (and small frames) are copied into an mbuf; the rest
// of a packet's fragments are attached to mbufs as external buffers, kept
// alive until the driver is done with them. That is only where the
// driver reads memory with the CPU by its virtual address (a virtual
// device: net_tap, net_af_packet, net_null, ...). A NIC's DMA needs
// memory registered with DPDK, which the shards' heap is not; and net_ring
// hands mbufs to whoever reads the ring, on another thread: there every
// byte is copied. Frames go out in bursts; a full ring holds them
// (bounded) until the next poll.
//
// Offloads: what the port advertises of IPv4/TCP checksums and TSO (TCP
// segmentation needs the zero-copy path), and receive checksum checks.
// RSS: with several queues, the port hashes with the stack's Toeplitz key
// and a redirection table that spreads hashes over the queues; the device
// then hands the hash up. The first hashed frames are checked against the
// stack's own hash: if the port disagrees, a line is logged and the stack
// steers by its own hash from then on.
//
// Thread rules: made and destroyed on one thread (the main one, before and
// after the shards), after start_eal; each queue opened, driven and
// destroyed on its shard. The device outlives the use of its queues and
// the frames they received. (With --dpdk-pmd the process's native stack,
// and so its queues, are never destroyed: their stacks stop, sending what
// they hold, and the device goes at exit.)
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tcpip/device.h"
#include "tcpip/toeplitz.h"

struct rte_eth_conf;
struct rte_eth_dev_info;
struct rte_mempool;

namespace reef::dpdk {

struct dpdk_device_options {
  std::uint16_t port = 0;
  /// Queue pairs wanted (one per shard); fewer if the port has fewer.
  unsigned queues = 1;
  /// The NUMA node of each queue's shard (its mbuf pool's memory);
  /// missing entries: the port's node.
  std::vector<int> numa_node_of_queue;
  std::uint16_t rx_ring = 512;
  std::uint16_t tx_ring = 512;
  /// The IP MTU; by default the port's (1500 where it says none).
  std::optional<std::uint16_t> mtu;
  /// The native stack's MAC; by default the port's.
  std::optional<tcpip::ethernet_address> mac;
  /// How long to wait for the link at start (a port still down after it
  /// is used anyway, and a line says so).
  std::chrono::milliseconds link_wait{5000};
  /// Use the checksum and segmentation offloads the port advertises.
  bool offloads = true;
  /// Close the port when the device goes (a port closed cannot be
  /// configured again in this process: a program's last use).
  bool close_port = false;
};

/// The port's counts (rte_eth_stats), and each queue's where the driver
/// keeps them.
struct port_stats {
  struct queue {
    std::uint64_t rx_frames = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_frames = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t rx_errors = 0;
  };
  std::uint64_t rx_frames = 0;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_frames = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_missed = 0;   // dropped by the port: no room in a ring
  std::uint64_t rx_errors = 0;
  std::uint64_t tx_errors = 0;
  std::uint64_t rx_no_mbuf = 0;  // receive ring refills that found no mbuf
  std::vector<queue> queues;
};

class dpdk_device final : public tcpip::device {
 public:
  /// Configures and starts the port. Throws std::runtime_error naming the
  /// port and what failed (no such port, too little memory for the
  /// pools, a configuration the driver refuses).
  explicit dpdk_device(dpdk_device_options options);
  /// Stops and closes the port; the pools go if every mbuf came back.
  ~dpdk_device() override;
  dpdk_device(const dpdk_device&) = delete;
  dpdk_device& operator=(const dpdk_device&) = delete;

  const tcpip::device_info& info() const noexcept override { return _info; }
  /// On the shard that drives it (registered with EAL there).
  std::unique_ptr<tcpip::device_queue> open_queue(unsigned index) override;

  /// The driver's name (net_tap, net_af_packet, ...).
  const std::string& driver() const noexcept { return _driver; }
  /// Whether transmitted fragments go out without a copy.
  bool zero_copy_tx() const noexcept { return _zero_copy_tx; }
  /// Whether the port's RSS hash was found to disagree with the stack's
  /// (the stack steers by its own).
  bool hash_disagrees() const noexcept;
  /// The link's speed in Mbit/s, 0 while it is down.
  std::uint32_t link_speed_mbps() const noexcept;
  port_stats stats() const;
  /// The driver's extended statistics, by name (rte_eth_xstats).
  std::vector<std::pair<std::string, std::uint64_t>> extended_stats() const;

  struct shared;  // (device.cc: what the queues share with the device)

 private:
  // The rest of the constructor, once the port started.
  void finish_start(const rte_eth_dev_info& dev, const rte_eth_conf& conf, const std::vector<std::uint8_t>& key,
                    unsigned queues, std::uint16_t mtu);

  dpdk_device_options _options;
  tcpip::device_info _info;
  std::string _driver;
  bool _zero_copy_tx = false;
  std::vector<rte_mempool*> _pools;  // per queue
  std::shared_ptr<shared> _shared;
  bool _started = false;
  bool _promiscuous_set = false;  // by us: turned off when the device goes
};

/// Whether `hash` is the stack's Toeplitz hash of the IPv4 TCP or UDP
/// frame that `frame` begins (an Ethernet header first); nullopt for a
/// frame the port does not hash by 4-tuple (not IPv4 TCP, nor UDP where
/// `udp_ports`; a fragment; too short).
std::optional<bool> hash_agrees(std::span<const std::uint8_t> frame, std::uint32_t hash,
                                const tcpip::toeplitz_hash& stack_hash, bool udp_ports = true);

}  // namespace reef::dpdk
