#include "tcpip/ipv4_interface.h"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/sleep.h"
#include "tcpip/arp_message.h"
#include "tcpip/checksum.h"
#include "tcpip/icmp_header.h"
#include "tcpip/ipv4_fragment.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

logger ip_log("tcpip");

// Frames taken from the queue per poll.
constexpr std::size_t batch_max = 32;

std::span<std::uint8_t> bytes_of(char* p, std::size_t n) noexcept {
  return std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(p), n);
}

// `p` with its first `n` bytes in one piece (a copy only where a device's
// frame comes in pieces that split its headers); those bytes.
std::span<const std::uint8_t> front(packet& p, std::size_t n) {
  if (p.len() == 0) return {};
  if (p.fragments().front().size < std::min(n, p.len())) p = packet(p.linearize());
  const fragment& f = p.fragments().front();
  return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(f.base), std::min(f.size, p.len()));
}

std::system_error error(int code, const char* what) { return std::system_error(code, std::system_category(), what); }

}  // namespace

class ipv4_interface::queue_poller final : public poller {
 public:
  explicit queue_poller(ipv4_interface& ip) : _ip(ip), _polled(ip._queue->polled()) {}
  bool poll() noexcept override { return _ip.poll(); }
  // Frames that arrived after the last poll found the queue empty (the
  // queue's notification sets the flag, then wakes the reactor: a frame
  // that comes just before the reactor sleeps is seen here). A polled
  // device always may have some: its shard does not sleep.
  bool has_work() noexcept override { return _polled || _ip._arrived.load(std::memory_order_acquire); }

 private:
  ipv4_interface& _ip;
  const bool _polled;  // a queue with no arrival notice: this shard polls it
};

ipv4_interface::ipv4_interface(device& dev, std::unique_ptr<device_queue> queue, interface_config config)
    : _device(dev),
      _info(dev.info()),
      _queue(std::move(queue)),
      _config(config),
      _arp([this](std::uint32_t ip) { send_arp(1, ethernet_address(), ip); }, config.arp),
      _reassembly(config.reassembly),
      _next_id(config.id_first) {
  check_address(_config.address, _config.netmask, _config.gateway);
}

interface_stats& interface_stats::operator+=(const interface_stats& o) noexcept {
  static_assert(sizeof(interface_stats) == 19 * sizeof(std::uint64_t), "a count is left out of the sum");
  rx_frames += o.rx_frames;
  not_ours += o.not_ours;
  ethernet_errors += o.ethernet_errors;
  unknown_type += o.unknown_type;
  arp_errors += o.arp_errors;
  arp_replies_sent += o.arp_replies_sent;
  ipv4_errors += o.ipv4_errors;
  checksum_bad += o.checksum_bad;
  not_our_address += o.not_our_address;
  unknown_protocol += o.unknown_protocol;
  echo_replies_sent += o.echo_replies_sent;
  tx_frames += o.tx_frames;
  tx_refused += o.tx_refused;
  unroutable += o.unroutable;
  too_big += o.too_big;
  bad_source += o.bad_source;
  no_memory += o.no_memory;
  icmp_errors += o.icmp_errors;
  icmp_errors_dropped += o.icmp_errors_dropped;
  return *this;
}

void ipv4_interface::check_address(std::uint32_t address, std::uint32_t netmask, std::optional<std::uint32_t> gateway) {
  const std::uint32_t host_bits = ~netmask;
  if ((host_bits & (host_bits + 1)) != 0) {
    throw std::invalid_argument("IPv4 interface: netmask " + ipv4_to_string(netmask) + " is not a prefix");
  }
  if (address == 0) {
    if (gateway) throw std::invalid_argument("IPv4 interface: a gateway without an address");
    return;
  }
  if ((address >> 24) == 127 || (address >> 28) >= 0xe || (host_bits != 0 && ((address & host_bits) == 0 ||
                                                                               (address & host_bits) == host_bits))) {
    throw std::invalid_argument("IPv4 interface: " + ipv4_to_string(address) + " is not a host's address");
  }
  if (gateway && ((*gateway & netmask) != (address & netmask) || *gateway == address)) {
    throw std::invalid_argument("IPv4 interface: gateway " + ipv4_to_string(*gateway) + " is off the network");
  }
}

void ipv4_interface::set_address(std::uint32_t address, std::uint32_t netmask, std::optional<std::uint32_t> gateway) {
  check_address(address, netmask, gateway);
  const bool changed = address != _config.address;
  _config.address = address;
  _config.netmask = netmask;
  _config.gateway = gateway;
  if (changed && _started && !_stopped && _config.announce && address != 0) {
    send_arp(1, ethernet_address(), address);
  }
}

ipv4_interface::~ipv4_interface() {
  if (_poller) {
    _queue->on_arrival({});
    engine().remove_poller(_poller.get());
  }
}

void ipv4_interface::start() {
  REEF_ASSERT(!_started, "ipv4_interface started twice");
  _started = true;
  _poller = std::make_unique<queue_poller>(*this);
  reactor& r = engine();
  _queue->on_arrival([this, &r] {
    _arrived.store(true, std::memory_order_release);
    r.wakeup();
  });
  r.add_poller(_poller.get());
  _tick.set_callback([this] {
    const auto now = lowres_clock::now();
    try {
      _arp.tick(now);
    } catch (...) {
      ++_stats.no_memory;  // retried at the next tick
    }
    _reassembly.expire(now);
  });
  _tick.arm_periodic(_config.tick);
  // Gratuitous ARP: who has our address (tell us) — others update their tables.
  if (_config.announce && _config.address != 0) send_arp(1, ethernet_address(), _config.address);
}

future<> ipv4_interface::stop() {
  REEF_ASSERT(!_stopped, "ipv4_interface stopped twice");
  _stopped = true;
  // Sends waiting for an address end first (answered, or failed by the
  // ARP retries, which need the poller and the timer meanwhile).
  co_await _sends.close();
  _tick.cancel();
  _queue->flush();  // (the last frames, a device that sends in bursts)
  if (_poller) {
    _queue->on_arrival({});
    engine().remove_poller(_poller.get());
    _poller.reset();
  }
}

void ipv4_interface::set_handler(std::uint8_t protocol, protocol_handler h) { _handlers[protocol] = std::move(h); }

void ipv4_interface::set_error_handler(std::uint8_t protocol, error_handler h) {
  _error_handlers[protocol] = std::move(h);
}

void ipv4_interface::learn_neighbour(std::uint32_t ip, ethernet_address mac, bool for_us) {
  _arp.learn(ip, mac, lowres_clock::now(), for_us);
}

bool ipv4_interface::poll() noexcept {
  _arrived.store(false, std::memory_order_relaxed);
  _batch.clear();
  std::size_t n = 0;
  try {
    n = _queue->receive(_batch, batch_max);
  } catch (...) {
    ++_stats.no_memory;  // the device could not hand its frames over
  }
  for (auto& f : _batch) receive(f);
  _batch.clear();
  return n > 0;
}

void ipv4_interface::receive(received_frame& f) noexcept {
  ++_stats.rx_frames;
  try {
    auto bytes = front(f.frame, ethernet_header::size + 28);  // an ARP message, or an IPv4 header
    ethernet_header eth;
    if (ethernet_header::parse(bytes, eth) != ethernet_error::none) {
      ++_stats.ethernet_errors;
      return;
    }
    if (eth.destination != _info.mac && !eth.destination.is_broadcast()) {
      ++_stats.not_ours;
      return;
    }
    if (eth.type == static_cast<std::uint16_t>(ether_type::arp)) {
      receive_arp(bytes.subspan(ethernet_header::size));
    } else if (eth.type == static_cast<std::uint16_t>(ether_type::ipv4)) {
      receive_ipv4(f, ethernet_header::size);
    } else {
      ++_stats.unknown_type;
    }
  } catch (...) {
    // No memory for a copy, a piece or an ARP entry: the frame is dropped.
    ++_stats.no_memory;
  }
}

void ipv4_interface::receive_arp(std::span<const std::uint8_t> payload) {
  arp_message m;
  if (arp_message::parse(payload, m) != arp_error::none) {
    ++_stats.arp_errors;
    return;
  }
  const bool for_us = _config.address != 0 && m.target_ip == _config.address;
  // Senders off our network are no neighbours of ours; a sender MAC that
  // is ours, zero or a group, or an IP no single host has, is a lie.
  const std::uint32_t network = _config.address & _config.netmask;
  if (!on_network(m.sender_ip) || m.sender_ip == network || is_broadcast(m.sender_ip) ||
      m.sender_ip == _config.address || m.sender_mac == _info.mac || m.sender_mac == ethernet_address() ||
      m.sender_mac.is_multicast()) {
    ++_stats.arp_errors;
    return;
  }
  _arp.learn(m.sender_ip, m.sender_mac, lowres_clock::now(), for_us);
  // Other shards hear of what was addressed to us (replies to our
  // requests, requests for our address): not of every ARP message on
  // the network.
  if (for_us && _arp_listener) _arp_listener(m.sender_ip, m.sender_mac, for_us);
  if (for_us && m.op == arp_message::operation::request) {
    ++_stats.arp_replies_sent;
    send_arp(2, m.sender_mac, m.sender_ip);
  }
}

// (Inline, as deliver(): one call per frame for the whole of IPv4.)
[[gnu::always_inline]] inline void ipv4_interface::receive_ipv4(received_frame& f, std::size_t ip_at) {
  if (f.checksum == checksum_status::bad) {
    ++_stats.checksum_bad;
    return;
  }
  packet& p = f.frame;
  if (p.len() < ip_at + ipv4_header::min_size) {
    ++_stats.ipv4_errors;
    return;
  }
  // The datagram in one piece, as parse() reads it (a copy only for a
  // frame a device delivered in pieces).
  if (p.fragments().front().size < p.len()) p = packet(std::move(p).linearize());
  const fragment& whole_frame = p.fragments().front();
  std::span<const std::uint8_t> ip(reinterpret_cast<const std::uint8_t*>(whole_frame.base) + ip_at, p.len() - ip_at);
  ipv4_header h;
  // (The header's checksum always: a device's "good" may vouch for the
  // TCP/UDP checksum alone, as a TAP's DATA_VALID does.)
  if (ipv4_header::parse(ip, h) != ipv4_error::none) {
    ++_stats.ipv4_errors;
    return;
  }
  if ((h.destination != _config.address || h.destination == 0) && !is_broadcast(h.destination)) {
    ++_stats.not_our_address;
    return;
  }
  // RFC 1122 3.2.1.3: a source no single host has is discarded (a reply
  // to it would go to many, or nowhere).
  // (0.0.0.0 is a host that has no address yet, and may only broadcast
  // UDP: DHCP.)
  if ((h.source == 0 && (!is_broadcast(h.destination) || h.protocol != static_cast<std::uint8_t>(ip_protocol::udp))) ||
      is_broadcast(h.source) || (h.source >> 28) == 0xe ||
      (h.source >> 24) == 127 || (h.source == _config.address && h.source != 0)) {
    ++_stats.bad_source;
    return;
  }
  // The data: past the header, up to the total length (a frame may pad),
  // in the frame's own memory.
  p.trim_front(ip_at + h.header_length);
  p.trim_back_to(h.data_length());
  if (h.is_fragment()) {
    auto whole = _reassembly.add(h, std::move(p), lowres_clock::now());
    if (!whole) return;
    if (h.header_length + whole->len() > ipv4_header::max_datagram) {
      ++_stats.ipv4_errors;  // its pieces ran past 65535 bytes with the header
      return;
    }
    // (The header delivered is the last piece's, its lengths the whole's.)
    h.fragment_offset = 0;
    h.more_fragments = false;
    h.total_length = static_cast<std::uint16_t>(std::min<std::size_t>(h.header_length + whole->len(), 65535));
    // (No device checks a transport's checksum across pieces.)
    deliver(h, std::move(*whole), checksum_status::unknown);
    return;
  }
  deliver(h, std::move(p), f.checksum);
}

[[gnu::always_inline]] inline void ipv4_interface::deliver(const ipv4_header& h, packet&& data,
                                                           checksum_status checksum) {
  if (h.protocol == static_cast<std::uint8_t>(ip_protocol::icmp)) {
    icmp_header icmp;
    if (icmp_header::parse(data, icmp) != icmp_error::none) {
      ++_stats.ipv4_errors;
      return;
    }
    if (icmp.type == static_cast<std::uint8_t>(icmp_type::echo_request) && h.destination == _config.address) {
      answer_echo(h, std::move(data));
      return;
    }
    if (icmp.type == static_cast<std::uint8_t>(icmp_type::destination_unreachable) ||
        icmp.type == static_cast<std::uint8_t>(icmp_type::time_exceeded)) {
      deliver_icmp_error(h, icmp, data);
      return;
    }
  }
  auto& handler = _handlers[h.protocol];
  if (!handler) {
    ++_stats.unknown_protocol;
    return;
  }
  try {
    handler(h, std::move(data), checksum);
  } catch (const std::exception& e) {
    ip_log.warn("protocol {} handler failed: {}", h.protocol, e.what());
  } catch (...) {
    ip_log.warn("protocol {} handler failed with an unknown exception", h.protocol);
  }
}

void ipv4_interface::deliver_icmp_error(const ipv4_header& h, const icmp_header& icmp, const packet& data) {
  // Only to us, never to a broadcast (RFC 1122 3.2.2).
  if (h.destination != _config.address || _config.address == 0) {
    ++_stats.icmp_errors_dropped;
    return;
  }
  // The quoted header (with options, up to 60 bytes) and 8 bytes of its
  // data, copied out of the message.
  std::array<std::uint8_t, 60 + 8> quoted_bytes;
  const std::size_t n = std::min(quoted_bytes.size(), data.len() - icmp_header::size);
  wire::copy_at(data, icmp_header::size, std::span<std::uint8_t>(quoted_bytes.data(), n));
  std::span<const std::uint8_t> quoted(quoted_bytes.data(), n);
  ipv4_header original;
  // A datagram of ours, its first piece (a later one quotes data, not
  // ports); and a port or protocol unreachable comes from the host we
  // sent to, not a router on the way.
  const bool from_the_host = icmp.type != static_cast<std::uint8_t>(icmp_type::destination_unreachable) ||
                             (icmp.code != static_cast<std::uint8_t>(icmp_unreachable::port) &&
                              icmp.code != static_cast<std::uint8_t>(icmp_unreachable::protocol));
  if (ipv4_header::parse_quoted(quoted, original) != ipv4_error::none || original.source != _config.address ||
      original.fragment_offset != 0 || quoted.size() < std::size_t{original.header_length} + 8 ||
      !_error_handlers[original.protocol] || (!from_the_host && h.source != original.destination)) {
    ++_stats.icmp_errors_dropped;
    return;
  }
  ++_stats.icmp_errors;
  try {
    _error_handlers[original.protocol](icmp, original, quoted.subspan(original.header_length, 8));
  } catch (const std::exception& e) {
    ip_log.warn("protocol {} error handler failed: {}", original.protocol, e.what());
  }
}

void ipv4_interface::answer_echo(const ipv4_header& h, packet data) noexcept {
  try {
    // The request as it came, its type now "reply", its checksum anew.
    temporary_buffer<char> reply = data.linearize();
    if (reply.size() < icmp_header::size) return;
    auto b = bytes_of(reply.get_write(), reply.size());
    b[0] = static_cast<std::uint8_t>(icmp_type::echo_reply);
    wire::put16(b, 2, 0);
    wire::put16(b, 2, internet_checksum(b));
    ++_stats.echo_replies_sent;
    (void)send(h.source, static_cast<std::uint8_t>(ip_protocol::icmp), packet(std::move(reply)))
        .handle_exception([](std::exception_ptr) {});  // counted where it failed
  } catch (const std::exception& e) {
    ip_log.debug("echo reply dropped: {}", e.what());
  }
}

void ipv4_interface::send_arp(std::uint16_t operation, ethernet_address target_mac, std::uint32_t target_ip) noexcept {
  try {
    arp_message m;
    m.op = static_cast<arp_message::operation>(operation);
    m.sender_mac = _info.mac;
    m.sender_ip = _config.address;
    m.target_mac = target_mac;
    m.target_ip = target_ip;
    temporary_buffer<char> body(arp_message::size);
    m.write(bytes_of(body.get_write(), body.size()));
    transmit(packet(std::move(body)), operation == 1 ? ethernet_address::broadcast() : target_mac,
             static_cast<std::uint16_t>(ether_type::arp));
  } catch (const std::exception& e) {
    ip_log.debug("ARP message dropped: {}", e.what());
  }
}

// (Inline: send() and transmit() together cost one call per datagram.)
[[gnu::always_inline]] inline void ipv4_interface::transmit(packet&& frame, ethernet_address destination,
                                                            std::uint16_t type, const tx_offload& offload) noexcept {
  try {
    ethernet_header eth{destination, _info.mac, type};
    eth.write(bytes_of(frame.prepend_header(ethernet_header::size), ethernet_header::size));
    // More pieces than the device takes (a long TSO segment of many
    // small writes): one piece, copied.
    if (frame.nr_frags() > _info.tx_segments_max) frame = packet(std::move(frame).linearize());
    std::array<tx_frame, 1> one{tx_frame{std::move(frame), offload}};
    if (_queue->transmit(one) == 1) {
      ++_stats.tx_frames;
    } else {
      ++_stats.tx_refused;
    }
  } catch (const std::exception& e) {
    ++_stats.tx_refused;
    ip_log.debug("frame dropped on send: {}", e.what());
  }
}

void ipv4_interface::transmit_datagrams(std::vector<packet> datagrams, ethernet_address destination,
                                        const tx_offload& offload) noexcept {
  for (auto& d : datagrams) transmit(std::move(d), destination, static_cast<std::uint16_t>(ether_type::ipv4), offload);
}

namespace {

// Where TCP's and UDP's checksum field is in their header.
std::size_t checksum_offset(std::uint8_t protocol) noexcept {
  return protocol == static_cast<std::uint8_t>(ip_protocol::udp) ? 6 : 16;
}

// Finishes in software a checksum the transport left to the device
// (the field holds the pseudo header's sum): for datagrams that go in
// pieces, which no device finishes.
void finish_checksum(std::uint8_t protocol, packet& data) {
  const std::size_t at = checksum_offset(protocol);
  if (data.len() < at + 2) return;
  if (data.fragments().front().size < at + 2) data = packet(std::move(data).linearize());
  checksummer c;
  c.add(data);
  const std::uint16_t sum = c.get();
  wire::put16(bytes_of(data.fragments().front().base, at + 2), at, protocol == 17 && sum == 0 ? 0xffff : sum);
}

}  // namespace

future<> ipv4_interface::send(std::uint32_t destination, std::uint8_t protocol, packet&& data, bool dont_fragment,
                              l4_offload offload) {
  if (!_started || _stopped) return make_exception_future<>(error(ENETDOWN, "IPv4: the interface is not running"));
  if (_config.address == 0 && destination != 0xffffffff) {
    ++_stats.unroutable;
    return make_exception_future<>(error(ENETUNREACH, "IPv4: no address yet (only broadcasts go)"));
  }
  try {
    // (Sends that wait hold the gate, for stop() to wait for them; a send
    // handed to the device at once has nothing to wait for.)
    if (destination == _config.address) {
      gate::holder hold = _sends.hold();
      // To ourselves: delivered here, in a task of its own (never inline).
      ipv4_header h;
      h.protocol = protocol;
      h.source = h.destination = _config.address;
      h.ttl = _config.ttl;
      h.total_length = static_cast<std::uint16_t>(std::min<std::size_t>(ipv4_header::min_size + data.len(), 65535));
      if (ipv4_header::min_size + data.len() > ipv4_header::max_datagram) {
        return make_exception_future<>(error(EMSGSIZE, "IPv4: too big to send"));
      }
      // (A checksum left to the device holds only the pseudo header's
      // sum: the data never left memory, and is taken as checked.)
      const checksum_status status = offload.checksum ? checksum_status::good : checksum_status::unknown;
      return yield().then([this, h, status, data = std::move(data), hold = std::move(hold)]() mutable {
        deliver(h, std::move(data), status);
      });
    }
    if (destination == 0 || (destination >> 24) == 127 || (destination >> 28) == 0xe) {
      ++_stats.unroutable;
      return make_exception_future<>(error(EADDRNOTAVAIL, "IPv4: not an address to send to"));
    }
    ipv4_header h;
    h.id = _next_id;
    _next_id = static_cast<std::uint16_t>(_next_id + _config.id_step);
    h.ttl = _config.ttl;
    h.protocol = protocol;
    h.source = _config.address;
    h.destination = destination;
    h.dont_fragment = dont_fragment;
    // One frame: up to the MTU, or a TCP segment the device cuts (TSO).
    const bool one_frame = ipv4_header::min_size + data.len() <= _info.mtu ||
                           (offload.segment_size != 0 && ipv4_header::min_size + data.len() <= ipv4_header::max_datagram);
    tx_offload device_work;
    if (offload.checksum || offload.segment_size != 0) {
      device_work.l4_length = offload.header_length;
      device_work.l4_checksum = offload.checksum;
      device_work.l4_checksum_at = protocol == static_cast<std::uint8_t>(ip_protocol::udp) ? 6 : 16;
      device_work.segment_size = offload.segment_size;
    }
    if (one_frame && offload.segment_size != 0 && data.len() > offload.header_length + offload.segment_size) {
      // The device numbers the pieces it cuts id, id + 1, ...: this
      // shard's next id (ids step by id_step) comes after theirs. (With
      // several shards a piece may take an id of another's, as on Linux:
      // ids matter only to fragments, and the pieces fit the MTU.)
      const std::size_t pieces =
          (data.len() - offload.header_length + offload.segment_size - 1) / offload.segment_size;
      const std::uint16_t steps = static_cast<std::uint16_t>((pieces + _config.id_step - 1) / _config.id_step);
      _next_id = static_cast<std::uint16_t>(_next_id + (steps - 1) * _config.id_step);
    }
    // The common case first: one datagram to a neighbour we know.
    if (one_frame && !is_broadcast(destination)) {
      const std::uint32_t hop = on_network(destination) ? destination : _config.gateway.value_or(0);
      if (hop != 0) {
        if (auto mac = _arp.lookup(hop, lowres_clock::now())) {
          prepend_ipv4_header(h, data);
          transmit(std::move(data), *mac, static_cast<std::uint16_t>(ether_type::ipv4), device_work);
          return make_ready_future<>();
        }
      }
    }
    std::vector<packet> datagrams;
    if (one_frame) {
      prepend_ipv4_header(h, data);
      datagrams.push_back(std::move(data));
    } else {
      if (offload.checksum) finish_checksum(protocol, data);
      device_work = {};
      datagrams = fragment_ipv4(h, std::move(data), _info.mtu);
    }
    if (datagrams.empty()) {
      ++_stats.too_big;
      return make_exception_future<>(error(EMSGSIZE, "IPv4: too big to send"));
    }
    if (is_broadcast(destination)) {
      transmit_datagrams(std::move(datagrams), ethernet_address::broadcast(), device_work);
      return make_ready_future<>();
    }
    std::uint32_t next_hop = destination;
    if (!on_network(destination)) {
      if (!_config.gateway) {
        ++_stats.unroutable;
        return make_exception_future<>(error(ENETUNREACH, "IPv4: no route"));
      }
      next_hop = *_config.gateway;
    }
    const auto now = lowres_clock::now();
    if (auto mac = _arp.lookup(next_hop, now)) {
      transmit_datagrams(std::move(datagrams), *mac, device_work);
      return make_ready_future<>();
    }
    // The datagrams wait (bounded by the ARP limits) for the address.
    gate::holder hold = _sends.hold();
    return _arp.resolve(next_hop, now)
        .then_wrapped([this, datagrams = std::move(datagrams), device_work, hold = std::move(hold)](
                          future<ethernet_address> mac) mutable -> future<> {
          if (mac.failed()) {
            ++_stats.unroutable;
            return make_exception_future<>(mac.get_exception());
          }
          transmit_datagrams(std::move(datagrams), mac.get(), device_work);
          return make_ready_future<>();
        });
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
}

}  // namespace reef::tcpip
