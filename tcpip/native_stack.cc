#include "tcpip/native_stack.h"

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "smp/foreign_ptr.h"
#include "smp/smp.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

logger stack_log("native_stack");

std::system_error error(int code, const char* what) { return std::system_error(code, std::system_category(), what); }

using foreign_packet = foreign_ptr<std::unique_ptr<packet>>;

foreign_packet make_foreign_packet(packet p) { return make_foreign(std::make_unique<packet>(std::move(p))); }

// A packet over the bytes of another shard's packet: when the last view
// of them goes, the original goes back to its shard to be freed there.
packet adopt(foreign_packet p) {
  const auto view = p->fragments();
  const std::vector<fragment> pieces(view.begin(), view.end());
  if (pieces.empty()) return packet();
  packet out(pieces.front(), make_deleter([p = std::move(p)] {}));
  for (std::size_t i = 1; i < pieces.size(); ++i) out.append(packet(pieces[i], deleter()));
  return out;
}

steering_config steering_of(const native_stack_options& o) {
  return steering_config{smp::count, o.hw_queue_weight, o.udp.ephemeral_first, o.udp.ephemeral_last};
}

}  // namespace

struct native_stack::forwarded {
  foreign_packet frame;
  std::optional<std::uint32_t> rss_hash;
  checksum_status checksum = checksum_status::unknown;
};

struct native_stack::relayed {
  foreign_packet frame;
  tx_offload offload;
};

// What the shard's IPv4 interface sees as its queue. On a queue's owner:
// the device's queue, with the frames of other shards' flows taken out
// and forwarded. On a shard without a queue: nothing to receive (frames
// come forwarded), and what it transmits goes to the queue's owner.
class native_stack::queue_front final : public device_queue {
 public:
  queue_front(native_stack& stack, std::unique_ptr<device_queue> queue)
      : _stack(stack), _queue(std::move(queue)) {}

  std::size_t receive(std::vector<received_frame>& out, std::size_t max) override {
    _stack.flush_relays();
    if (!_queue) return 0;
    const flow_steering& steering = _stack._network.steering();
    if (steering.shards() == 1) return _queue->receive(out, max);
    _frames.clear();
    const std::size_t n = _queue->receive(_frames, max);
    for (auto& f : _frames) {
      std::span<const std::uint8_t> head;
      if (!f.frame.fragments().empty()) {
        const fragment& first = f.frame.fragments().front();
        head = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(first.base), first.size);
      }
      const unsigned shard = steering.shard_of_frame(head, f.rss_hash, _stack._shard);
      if (shard == _stack._shard) {
        out.push_back(std::move(f));
      } else {
        _stack.forward_frame(shard, std::move(f));
      }
    }
    _frames.clear();
    _stack.flush_forwards();
    return n;
  }

  std::size_t transmit(std::span<tx_frame> frames) override {
    if (_queue) return _queue->transmit(frames);
    std::size_t taken = 0;
    while (taken < frames.size() && _stack.relay(frames[taken])) ++taken;
    // The interface's poller sends them on (flush_relays) before the
    // reactor sleeps.
    if (taken > 0 && _notify) _notify();
    return taken;
  }

  void on_arrival(noncopyable_function<void()> notify) override {
    if (_queue) {
      _queue->on_arrival(std::move(notify));
    } else {
      _notify = std::move(notify);
    }
  }

  // (A follower's frames go to the owner's queue: it has nothing to poll
  // or flush.)
  bool polled() const noexcept override { return _queue && _queue->polled(); }
  void flush() noexcept override {
    _stack.flush_relays();
    if (_queue) _queue->flush();
  }

 private:
  native_stack& _stack;
  std::unique_ptr<device_queue> _queue;
  std::vector<received_frame> _frames;
  noncopyable_function<void()> _notify;  // a follower's: run on its own thread only
};

native_stack_stats& native_stack_stats::operator+=(const native_stack_stats& o) noexcept {
  ip += o.ip;
  udp += o.udp;
  tcp += o.tcp;
  forwarded += o.forwarded;
  forwarded_in += o.forwarded_in;
  relayed += o.relayed;
  relayed_in += o.relayed_in;
  forward_dropped += o.forward_dropped;
  if (o.queue) {
    static_assert(sizeof(device_queue_stats) == 6 * sizeof(std::uint64_t), "a count is left out of the sum");
    device_queue_stats q = queue.value_or(device_queue_stats{});
    q.rx_frames += o.queue->rx_frames;
    q.rx_bytes += o.queue->rx_bytes;
    q.tx_frames += o.queue->tx_frames;
    q.tx_bytes += o.queue->tx_bytes;
    q.tx_refused += o.queue->tx_refused;
    q.rx_dropped += o.queue->rx_dropped;
    queue = q;
  }
  return *this;
}

native_stack::native_stack(native_network& network, unsigned shard)
    : _network(network), _shard(shard), _outgoing(smp::count), _in_flight(smp::count, 0) {}

native_stack::~native_stack() { REEF_ASSERT(!_started, "native_stack destroyed while running"); }

void native_stack::start() {
  const flow_steering& steering = _network.steering();
  interface_config config = _network.options().ip;
  config.id_first = static_cast<std::uint16_t>(config.id_first + _shard);
  config.id_step = static_cast<std::uint16_t>(config.id_step * steering.shards());
  config.announce = config.announce && _shard == 0;
  std::unique_ptr<device_queue> queue;
  if (steering.owns_queue(_shard)) queue = _network.dev().open_queue(_shard);
  _device_queue = queue.get();
  _ip.emplace(_network.dev(), std::make_unique<queue_front>(*this, std::move(queue)), config);
  _udp.emplace(*_ip, _network.options().udp);
  _tcp.emplace(*_ip, _network.options().tcp, steering.shards() == 1);
  if (steering.shards() > 1) {
    _udp->set_ephemeral_filter([this](std::uint16_t port) {
      return _network.steering().ephemeral_port_of(_shard, port);
    });
    // A connection's segments come back to the shard its 4-tuple steers
    // to: connect() takes only ports that steer here.
    _tcp->set_ephemeral_filter([this](std::uint16_t port, std::uint32_t remote_ip, std::uint16_t remote_port) {
      return _network.steering().shard_of_datagram(static_cast<std::uint8_t>(ip_protocol::tcp), remote_ip,
                                                   _ip->address(), remote_port, port) == _shard;
    });
    auto transport = [this](const ipv4_header& h, packet&& data, checksum_status checksum) {
      receive_transport(h, std::move(data), checksum);
    };
    _ip->set_handler(static_cast<std::uint8_t>(ip_protocol::udp), transport);
    _ip->set_handler(static_cast<std::uint8_t>(ip_protocol::tcp), transport);
    _ip->set_arp_listener([this](std::uint32_t ip, ethernet_address mac, bool for_us) {
      // Every shard's cache learns it (a shard waiting for this address
      // sends on).
      for (unsigned s = 0; s < smp::count; ++s) {
        if (s == _shard) continue;
        if (!reserve(s, 1)) {
          ++_stats.forward_dropped;
          continue;
        }
        // (To a stopping shard too: its sends waiting for this address
        // end sooner.)
        send_to(s, 1, [network = &_network, ip, mac, for_us] {
          if (native_stack* stack = network->existing()) stack->take_neighbour(ip, mac, for_us);
        });
      }
    });
  }
  _ip->start();
  _started = true;
  register_metrics();
}

void native_stack::register_metrics() noexcept {
  try {
    // Several stacks may share a shard (two networks in one process): the
    // second is "native-2", and so on.
    std::string name = "native";
    for (unsigned n = 2; metrics::is_registered("net_native_ipv4_rx_frames_total", {{"stack", name}}); ++n) {
      name = "native-" + std::to_string(n);
    }
    using field = std::uint64_t (*)(const native_stack_stats&);
    std::vector<metrics::metric_definition> defs;
    auto add = [&](bool counter, const char* metric, const char* help, field read, metrics::labels extra = {}) {
      metrics::labels labels{{"stack", name}};
      for (auto& l : extra) labels.push_back(std::move(l));
      auto reader = [this, read] { return static_cast<double>(read(stats())); };
      defs.push_back(counter ? metrics::make_counter(metric, help, reader, std::move(labels))
                             : metrics::make_gauge(metric, help, reader, std::move(labels)));
    };
    // (Each reader takes the stack's stats: a scrape is rare.)
#define REEF_STAT(expr) [](const native_stack_stats& s) -> std::uint64_t { return expr; }
    if (_device_queue != nullptr) {
      add(true, "device_rx_frames_total", "Frames the device queue received.", REEF_STAT(s.queue->rx_frames));
      add(true, "device_rx_bytes_total", "Bytes the device queue received.", REEF_STAT(s.queue->rx_bytes));
      add(true, "device_tx_frames_total", "Frames the device queue sent.", REEF_STAT(s.queue->tx_frames));
      add(true, "device_tx_bytes_total", "Bytes the device queue sent.", REEF_STAT(s.queue->tx_bytes));
      add(true, "device_dropped_total", "Frames the device dropped.", REEF_STAT(s.queue->rx_dropped),
          {{"reason", "rx_no_room"}});
      add(true, "device_dropped_total", "Frames the device dropped.", REEF_STAT(s.queue->tx_refused),
          {{"reason", "tx_refused"}});
    }
    add(true, "ipv4_rx_frames_total", "Frames the interface took in.", REEF_STAT(s.ip.rx_frames));
    add(true, "ipv4_tx_frames_total", "Frames the interface sent.", REEF_STAT(s.ip.tx_frames));
    const char* ip_help = "Frames and datagrams the interface dropped, by reason.";
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.not_ours), {{"reason", "not_ours"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.ethernet_errors), {{"reason", "ethernet_error"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.unknown_type), {{"reason", "unknown_type"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.arp_errors), {{"reason", "arp_error"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.ipv4_errors), {{"reason", "ipv4_error"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.checksum_bad), {{"reason", "bad_checksum"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.not_our_address), {{"reason", "not_our_address"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.unknown_protocol), {{"reason", "unknown_protocol"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.tx_refused), {{"reason", "tx_refused"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.unroutable), {{"reason", "unroutable"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.too_big), {{"reason", "too_big"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.bad_source), {{"reason", "bad_source"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.no_memory), {{"reason", "no_memory"}});
    add(true, "ipv4_dropped_total", ip_help, REEF_STAT(s.ip.icmp_errors_dropped), {{"reason", "icmp_error_unmatched"}});
    add(true, "udp_received_total", "UDP datagrams received.", REEF_STAT(s.udp.received));
    add(true, "udp_sent_total", "UDP datagrams sent.", REEF_STAT(s.udp.sent));
    const char* udp_help = "UDP datagrams dropped, by reason.";
    add(true, "udp_dropped_total", udp_help, REEF_STAT(s.udp.errors), {{"reason", "error"}});
    add(true, "udp_dropped_total", udp_help, REEF_STAT(s.udp.no_port), {{"reason", "no_port"}});
    add(true, "udp_dropped_total", udp_help, REEF_STAT(s.udp.queue_full), {{"reason", "queue_full"}});
    add(true, "tcp_segments_received_total", "TCP segments received.", REEF_STAT(s.tcp.segments.segments_received));
    add(true, "tcp_segments_sent_total", "TCP segments sent.", REEF_STAT(s.tcp.segments.segments_sent));
    add(true, "tcp_retransmits_total", "TCP segments sent again.", REEF_STAT(s.tcp.segments.retransmitted));
    add(true, "tcp_timeouts_total", "TCP retransmission timer expiries.", REEF_STAT(s.tcp.segments.timeouts));
    add(true, "tcp_fast_retransmits_total", "TCP fast recoveries entered.", REEF_STAT(s.tcp.segments.fast_retransmits));
    add(true, "tcp_resets_received_total", "TCP resets received.", REEF_STAT(s.tcp.segments.resets_received));
    add(true, "tcp_resets_sent_total", "TCP resets sent.", REEF_STAT(s.tcp.segments.resets_sent + s.tcp.resets_for_no_socket));
    const char* tcp_help = "TCP segments dropped, by reason.";
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.header_errors), {{"reason", "header_error"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.not_for_us), {{"reason", "not_for_us"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.syns_dropped), {{"reason", "syn_over_limit"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.memory_drops), {{"reason", "no_memory"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.segments.out_of_window), {{"reason", "out_of_window"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.segments.paws_rejected), {{"reason", "paws"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.segments.bad_acks), {{"reason", "bad_ack"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.segments.syn_fin_dropped), {{"reason", "syn_fin"}});
    add(true, "tcp_dropped_total", tcp_help, REEF_STAT(s.tcp.segments.out_of_order_dropped),
        {{"reason", "out_of_order_full"}});
    add(true, "tcp_accept_overflows_total", "Connections reset: the accept queue was full.",
        REEF_STAT(s.tcp.accept_overflows));
    add(true, "tcp_connections_opened_total", "TCP connections opened (active and passive).",
        REEF_STAT(s.tcp.connections_opened));
    add(true, "tcp_connections_closed_total", "TCP connections finished and let go.", REEF_STAT(s.tcp.connections_closed));
    add(false, "tcp_connections", "TCP connections in the table.", REEF_STAT(s.tcp.connections));
    add(false, "tcp_buffered_bytes", "Bytes queued to send or unread.", REEF_STAT(s.tcp.buffered_bytes));
    add(true, "forwarded_total", "Frames and datagrams sent to the shard that owns them.", REEF_STAT(s.forwarded));
    add(true, "forwarded_in_total", "Frames and datagrams taken from other shards.", REEF_STAT(s.forwarded_in));
    add(true, "forward_dropped_total", "Frames dropped past the in-flight bound between shards.",
        REEF_STAT(s.forward_dropped));
#undef REEF_STAT
    _metrics.add_group("net_native", std::move(defs));
  } catch (const std::exception& e) {
    stack_log.error("the native stack's metrics are not registered: {}", e.what());
  }
}

future<> native_stack::stop() {
  if (!_started) co_return;
  _started = false;
  _tcp->abort_all();
  co_await _ip->stop();
  for (auto& batch : _outgoing) batch.clear();
  _to_transmit.clear();
  co_await _messages.close();
}

server_socket native_stack::listen(const socket_address& address, const listen_options& options) {
  return _tcp->listen(address, options);
}

future<connected_socket> native_stack::connect(const socket_address& address, const connect_options& options) {
  return _tcp->connect(address, options);
}

udp_channel native_stack::make_udp_channel(const socket_address& local) { return _udp->make_channel(local); }

native_stack_stats native_stack::stats() const {
  native_stack_stats s = _stats;
  if (_ip) s.ip = _ip->stats();
  if (_udp) s.udp = _udp->stats();
  if (_tcp) s.tcp = _tcp->stats();
  if (_device_queue) s.queue = _device_queue->stats();
  return s;
}

bool native_stack::reserve(unsigned shard, std::size_t frames) noexcept {
  return _in_flight[shard] + frames <= _network.options().in_flight_max;
}

template <typename Func>
void native_stack::send_to(unsigned shard, std::size_t frames, Func&& f) noexcept {
  try {
    gate::holder hold = _messages.hold();
    _in_flight[shard] += frames;
    (void)smp::submit_to(shard, std::forward<Func>(f))
        .then_wrapped([this, shard, frames, hold = std::move(hold)](future<> done) {
          _in_flight[shard] -= frames;
          done.ignore_ready_future();  // a stopped shard: what it carried is dropped
        });
  } catch (...) {
    _stats.forward_dropped += frames;  // stopping, or no memory for the message
  }
}

void native_stack::forward_frame(unsigned shard, received_frame f) noexcept {
  try {
    _outgoing[shard].push_back(forwarded{make_foreign_packet(std::move(f.frame)), f.rss_hash, f.checksum});
  } catch (...) {
    ++_stats.forward_dropped;
  }
}

void native_stack::flush_forwards() noexcept {
  for (unsigned s = 0; s < _outgoing.size(); ++s) {
    auto& batch = _outgoing[s];
    if (batch.empty()) continue;
    const std::size_t room = _network.options().in_flight_max - std::min(_in_flight[s], _network.options().in_flight_max);
    if (batch.size() > room) {
      _stats.forward_dropped += batch.size() - room;
      batch.resize(room);
    }
    if (batch.empty()) continue;
    const std::size_t n = batch.size();
    _stats.forwarded += n;
    send_to(s, n, [network = &_network, frames = std::move(batch)]() mutable {
      if (native_stack* stack = network->running()) stack->take_forwarded(std::move(frames));
    });
    batch = std::vector<forwarded>();
  }
}

void native_stack::take_forwarded(std::vector<forwarded> frames) noexcept {
  for (auto& f : frames) {
    ++_stats.forwarded_in;
    try {
      _ip->process(received_frame{adopt(std::move(f.frame)), f.rss_hash, f.checksum});
    } catch (...) {
      ++_stats.ip.no_memory;
    }
  }
}

void native_stack::receive_transport(const ipv4_header& h, packet&& data, checksum_status checksum) noexcept {
  // A datagram reassembled here, or one the device hashed other than we
  // do, may belong to another shard.
  if (data.len() >= 4) {
    std::array<std::uint8_t, 4> ports;
    wire::copy_front(data, ports);
    const unsigned shard = _network.steering().shard_of_datagram(h.protocol, h.source, h.destination,
                                                                 wire::get16(ports, 0), wire::get16(ports, 2));
    if (shard != _shard) {
      if (!reserve(shard, 1)) {
        ++_stats.forward_dropped;
        return;
      }
      try {
        ++_stats.forwarded;
        send_to(shard, 1, [network = &_network, h, d = forwarded{make_foreign_packet(std::move(data)), std::nullopt, checksum}]() mutable {
          if (native_stack* stack = network->running()) stack->take_datagram(h, std::move(d));
        });
      } catch (...) {
        ++_stats.forward_dropped;
      }
      return;
    }
  }
  if (h.protocol == static_cast<std::uint8_t>(ip_protocol::tcp)) {
    _tcp->receive(h, std::move(data), checksum);
  } else {
    _udp->receive(h, std::move(data), checksum);
  }
}

void native_stack::take_datagram(const ipv4_header& h, forwarded d) noexcept {
  ++_stats.forwarded_in;
  try {
    if (h.protocol == static_cast<std::uint8_t>(ip_protocol::tcp)) {
      _tcp->receive(h, adopt(std::move(d.frame)), d.checksum);
    } else {
      _udp->receive(h, adopt(std::move(d.frame)), d.checksum);
    }
  } catch (...) {
    ++_stats.ip.no_memory;
  }
}

bool native_stack::relay(tx_frame& f) noexcept {
  const unsigned owner = _network.steering().transmitter_of(_shard);
  if (!reserve(owner, _to_transmit.size() + 1)) return false;
  try {
    _to_transmit.push_back(relayed{make_foreign_packet(std::move(f.frame)), f.offload});
    return true;
  } catch (...) {
    return false;
  }
}

void native_stack::flush_relays() noexcept {
  if (_to_transmit.empty()) return;
  const std::size_t n = _to_transmit.size();
  _stats.relayed += n;
  send_to(_network.steering().transmitter_of(_shard), n,
          [network = &_network, frames = std::move(_to_transmit)]() mutable {
            // A queue owner that is stopping (it stops first) still sends
            // a follower's last frames (its resets), and flushes them.
            if (native_stack* stack = network->running()) {
              stack->take_relayed(std::move(frames), false);
            } else if (native_stack* stopping = network->existing()) {
              stopping->take_relayed(std::move(frames), true);
            }
          });
  _to_transmit = std::vector<relayed>();
}

void native_stack::take_relayed(std::vector<relayed> frames, bool flush) noexcept {
  if (!_device_queue) return;
  try {
    std::vector<tx_frame> out;
    out.reserve(frames.size());
    for (auto& f : frames) out.push_back(tx_frame{adopt(std::move(f.frame)), f.offload});
    const std::size_t taken = _device_queue->transmit(out);
    _stats.relayed_in += taken;
    _stats.forward_dropped += out.size() - taken;
  } catch (...) {
    _stats.forward_dropped += frames.size();
  }
  if (flush) _device_queue->flush();  // (no poll comes to send them)
}

void native_stack::take_neighbour(std::uint32_t ip, ethernet_address mac, bool for_us) noexcept {
  if (!_ip) return;
  try {
    _ip->learn_neighbour(ip, mac, for_us);
  } catch (...) {
    ++_stats.ip.no_memory;
  }
}

native_network::native_network(device& dev, native_stack_options options)
    : _device(dev),
      _options(std::move(options)),
      _steering(dev.info(), steering_of(_options)),
      _shards(smp::count),
      _stopped(smp::count, 0) {}

native_network::~native_network() {
  for (auto& s : _shards) REEF_ASSERT(!s, "native_network destroyed before stop() ended");
}

native_stack& native_network::local() {
  const unsigned me = this_shard_id();
  if (_stopped[me]) throw error(ENETDOWN, "the native stack has stopped on this shard");
  if (!_shards[me]) {
    auto stack = std::make_unique<native_stack>(*this, me);
    stack->start();
    _shards[me] = std::move(stack);
  }
  return *_shards[me];
}

native_stack* native_network::running() noexcept {
  const unsigned shard = this_shard_id();
  if (_stopped[shard]) return nullptr;
  try {
    return &local();
  } catch (const std::exception& e) {
    // Once: what comes from other shards is dropped from now on.
    _stopped[shard] = 1;
    stack_log.error("the native stack could not start on shard {}: {}", shard, e.what());
    return nullptr;
  }
}

native_stack* native_network::existing() noexcept { return _shards[this_shard_id()].get(); }

future<> native_network::start() {
  return smp::invoke_on_all([this] { local(); });
}

future<> native_network::stop_local() {
  const unsigned me = this_shard_id();
  if (me == 0 && _dhcp) {
    co_await _dhcp->stop();
    _dhcp.reset();
  }
  _stopped[me] = 1;
  if (_shards[me]) co_await _shards[me]->stop();
}

future<dhcp_lease> native_network::start_dhcp(dhcp_options options) {
  REEF_ASSERT(this_shard_id() == 0 && !_dhcp, "start_dhcp() on shard 0, once");
  native_stack& stack = local();
  _dhcp = std::make_unique<dhcp_client>(stack.ip(), stack.udp(), options, [this](const dhcp_lease* lease) {
    const std::uint32_t address = lease ? lease->address : 0;
    const std::uint32_t netmask = lease ? lease->netmask : 0xffffff00;
    const std::optional<std::uint32_t> gateway = lease ? lease->gateway : std::nullopt;
    return smp::invoke_on_all([this, address, netmask, gateway] {
      if (native_stack* s = running()) s->ip().set_address(address, netmask, gateway);
    });
  });
  return _dhcp->acquire();
}

future<> native_network::stop_shards() {
  return smp::invoke_on_all([this] { return stop_local(); });
}

future<> native_network::stop() {
  co_await stop_shards();
  // Every shard's messages are answered: the stacks go.
  co_await smp::invoke_on_all([this] { _shards[this_shard_id()].reset(); });
}

}  // namespace reef::tcpip
