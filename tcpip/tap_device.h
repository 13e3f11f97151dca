// A Linux TAP interface as a native stack device: Ethernet frames to and
// from the kernel, which sees them as a network interface of its own (the
// "wire" ends there). Opened by name; the interface is made and set up
// by the user or the test (`ip tuntap add dev tap0 mode tap multi_queue`,
// `ip addr add`, `ip link set up`), or made here if absent (root).
//
//   tcpip::tap_device tap({.name = "tap0", .queues = 2});
//   native_network net(tap, {...});
//
// Each queue is a descriptor of its own (IFF_MULTI_QUEUE; the kernel
// keeps a flow on the queue that last sent it), driven through the
// reactor's I/O backend. On io_uring (Linux 6.8 or later) the ring reads
// each frame as it comes into a buffer of its pool (multishot read): no
// system call per frame, nor one that finds the queue empty. Frames of
// up to 256 bytes are copied out and the buffer goes back at once; larger
// ones go up lent until half of the shard's pool is lent (then copied
// too). When the pool is dry, and on older kernels, the ring
// says when the queue is readable and frames are read (up to 64) by
// system calls. Frames are written by system calls. On epoll, reads are
// kept in flight in the backend. Frames
// carry the virtio-net header, which carries the offloads: the kernel
// finishes the checksums we leave to it and cuts our TCP segments longer
// than the MTU (TSO); a frame it checked, or whose checksum it left
// undone (its own), comes in as checksum_status::good.
//
// Thread rules: made on any thread; each queue is opened, driven and
// destroyed on one shard. The device outlives its queues.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tcpip/device.h"

namespace reef::tcpip {

struct tap_options {
  std::string name;  // the interface, at most 15 bytes
  unsigned queues = 1;
  /// The IP MTU the stack uses; by default the interface's.
  std::optional<std::uint16_t> mtu;
  /// The native stack's own MAC (the kernel's side has another).
  ethernet_address mac{{0x02, 0x52, 0x45, 0x45, 0x46, 0x01}};
  /// Reads kept in flight per queue on epoll; frames read at most each
  /// time the queue is readable on io_uring, where the ring does not read
  /// for us.
  unsigned reads_in_flight = 64;
  /// Frames written and not yet done per queue (epoll); transmit() takes
  /// no more.
  unsigned writes_in_flight = 256;
};

class tap_device final : public device {
 public:
  /// Opens the interface's queues. Throws std::system_error naming the
  /// interface (no such device and no right to make one, a single-queue
  /// interface asked for more queues, ...) or std::invalid_argument (a
  /// bad name, 0 queues, an MTU outside 68..9000).
  explicit tap_device(tap_options options);
  ~tap_device() override;

  const device_info& info() const noexcept override { return _info; }
  /// On the shard that will drive it.
  std::unique_ptr<device_queue> open_queue(unsigned index) override;

  const std::string& name() const noexcept { return _options.name; }

 private:
  tap_options _options;
  device_info _info;
  std::uint16_t _interface_mtu = 1500;  // the kernel side's
  std::vector<int> _fds;  // per queue; -1 once its queue took it
};

}  // namespace reef::tcpip
