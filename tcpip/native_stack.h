// The native network stack: Reef's own IPv4, UDP and TCP on a device it
// drives itself, one instance per shard, behind the same
// network_stack interface as the POSIX stack (net/stack.h).
//
// A native_network is what the shards share: the device, the
// configuration and the flow steering (tcpip/flow_steering.h). Each
// shard has its own native_stack: an IPv4 interface with its own ARP
// cache and reassembly, its own UDP ports, and its own TCP connections
// and listeners (a connection lives on the shard its 4-tuple steers to;
// connect() picks a local port that steers back to the calling shard; a
// listener is per shard, so a program listens on every shard, and a SYN
// steered to a shard that does not listen is reset). Shard q < queues drives
// device queue q from its reactor; a received frame whose flow belongs
// to another shard is forwarded there in a batch, through the smp
// queues, and a shard without a queue hands what it sends to its queue's
// owner the same way. What one shard has in flight to another is bounded:
// past the bound a frame is dropped and counted (stats()), never held
// without limit. A forwarded frame's memory goes back to the shard that
// made it to be freed.
//
//   native_network net(link.end(0), {.ip = {.address = ip("10.0.0.1")}});
//   co_await net.start();                        // every shard: queues polled
//   auto ch = net.local().make_udp_channel(...); // on any shard
//   co_await net.stop();
//
// Programs that use the free functions (listen, make_udp_channel) select
// it with --network-stack native (tcpip/native_stack_flags.h); it then
// starts on every shard at first use and stops at smp's shutdown.
//
// Thread rules: a native_network is made on a shard inside smp::run (it
// sizes itself by smp::count) and outlives its use; local() and the
// stack it returns on their own shard.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/future.h"
#include "core/gate.h"
#include "core/metrics.h"
#include "net/stack.h"
#include "tcpip/device.h"
#include "tcpip/dhcp.h"
#include "tcpip/flow_steering.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/tcp.h"
#include "tcpip/udp.h"

namespace reef::tcpip {

struct native_stack_options {
  /// The address, netmask, gateway and limits (each shard's IP ids and
  /// who announces the address are set here).
  interface_config ip;
  udp_limits udp;
  tcp_layer_options tcp;
  /// The share of its queue's flows a queue owner keeps (0 to 1), where
  /// shards without queues lean on it.
  double hw_queue_weight = 1.0;
  /// Frames one shard may have in flight to another (forwarded, or to
  /// transmit) before it drops what comes next.
  std::size_t in_flight_max = 2048;
};

/// One shard's counts.
struct native_stack_stats {
  interface_stats ip;
  udp_stats udp;
  tcp_layer_stats tcp;
  std::uint64_t forwarded = 0;        // frames and datagrams sent to the shard that owns them
  std::uint64_t forwarded_in = 0;     // taken from other shards
  std::uint64_t relayed = 0;          // frames sent to the queue owner to transmit
  std::uint64_t relayed_in = 0;       // frames transmitted for other shards
  std::uint64_t forward_dropped = 0;  // past in_flight_max: dropped
  std::optional<device_queue_stats> queue;  // the device queue this shard drives

  /// Adds another shard's counts (the stack's total; queues' counts add
  /// up where both have one).
  native_stack_stats& operator+=(const native_stack_stats& o) noexcept;
};

class native_network;

class native_stack final : public network_stack {
 public:
  native_stack(native_network& network, unsigned shard);
  ~native_stack() override;

  const char* name() const noexcept override { return "native"; }
  /// Listens on this shard (see tcp_layer::listen).
  server_socket listen(const socket_address& address, const listen_options& options) override;
  /// Connects from this shard (see tcp_layer::connect).
  future<connected_socket> connect(const socket_address& address, const connect_options& options) override;
  /// A UDP socket; an ephemeral port is one whose replies come to this
  /// shard. Throws std::system_error (see udp_layer::make_channel).
  udp_channel make_udp_channel(const socket_address& local) override;

  native_stack_stats stats() const;
  ipv4_interface& ip() noexcept { return *_ip; }
  udp_layer& udp() noexcept { return *_udp; }
  tcp_layer& tcp() noexcept { return *_tcp; }

  // For the network's shards (native_stack.cc).
  class queue_front;
  struct forwarded;
  struct relayed;
  void start();
  future<> stop();
  void take_forwarded(std::vector<forwarded> frames) noexcept;
  void take_datagram(const ipv4_header& h, forwarded d) noexcept;
  /// Transmits a follower's frames; `flush`: this stack is stopping (no
  /// poll comes to hand held frames to the device).
  void take_relayed(std::vector<relayed> frames, bool flush) noexcept;
  void take_neighbour(std::uint32_t ip, ethernet_address mac, bool for_us) noexcept;

 private:
  friend class queue_front;
  void forward_frame(unsigned shard, received_frame f) noexcept;
  void flush_forwards() noexcept;
  bool relay(tx_frame& f) noexcept;
  void flush_relays() noexcept;
  void receive_transport(const ipv4_header& h, packet&& data, checksum_status checksum) noexcept;
  bool reserve(unsigned shard, std::size_t frames) noexcept;
  template <typename Func>
  void send_to(unsigned shard, std::size_t frames, Func&& f) noexcept;

  native_network& _network;
  unsigned _shard;
  device_queue* _device_queue = nullptr;  // the device's, owned by the interface's front
  std::optional<ipv4_interface> _ip;
  std::optional<udp_layer> _udp;
  std::optional<tcp_layer> _tcp;  // (after _udp and _ip: destroyed before them)
  std::vector<std::vector<forwarded>> _outgoing;  // per shard, to send
  std::vector<relayed> _to_transmit;              // for the queue owner
  std::vector<std::size_t> _in_flight;            // per shard
  gate _messages;
  native_stack_stats _stats;
  noncopyable_function<void()> _wake;  // makes the interface's poller run again
  bool _started = false;
  // Last: removed before what they read.
  metrics::metric_groups _metrics;

  void register_metrics() noexcept;
};

class native_network {
 public:
  /// Throws std::invalid_argument for a device with more queues than
  /// shards, or a bad interface configuration.
  native_network(device& dev, native_stack_options options);
  ~native_network();
  native_network(const native_network&) = delete;
  native_network& operator=(const native_network&) = delete;

  /// This shard's stack, made and started on first use.
  native_stack& local();
  /// Starts the stack on every shard (the queue owners poll from then on).
  future<> start();
  /// Stops every shard's stack (sends in flight end first), then
  /// destroys them. Channels must be closed and gone before.
  future<> stop();
  /// Stops every shard's stack but leaves them (and their channels) in
  /// place: for a stack that lives as long as the process.
  future<> stop_shards();
  /// stop_shards() for this shard alone (an smp::at_shutdown hook).
  future<> stop_local();
  /// This shard's stack if it runs or can start; nullptr once stopped
  /// (or once it failed to start: logged once).
  native_stack* running() noexcept;
  /// This shard's stack if it was made, running or stopping.
  native_stack* existing() noexcept;

  /// On shard 0, once started, with no address configured: runs the DHCP
  /// client there, every lease applied on every shard. Resolves with the
  /// first lease (fails as dhcp_client::acquire() does; the client goes on
  /// searching). The client stops with shard 0's stack.
  future<dhcp_lease> start_dhcp(dhcp_options options = {});
  /// Shard 0's DHCP client, if started.
  const dhcp_client* dhcp() const noexcept { return _dhcp.get(); }

  device& dev() noexcept { return _device; }
  const native_stack_options& options() const noexcept { return _options; }
  const flow_steering& steering() const noexcept { return _steering; }

 private:
  device& _device;
  native_stack_options _options;
  flow_steering _steering;
  // Slot s is made, used and destroyed on shard s only.
  std::vector<std::unique_ptr<native_stack>> _shards;
  std::vector<char> _stopped;
  std::unique_ptr<dhcp_client> _dhcp;  // shard 0's
};

}  // namespace reef::tcpip
