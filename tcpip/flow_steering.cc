#include "tcpip/flow_steering.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "tcpip/ethernet.h"
#include "tcpip/icmp_header.h"
#include "tcpip/ipv4_header.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

constexpr std::size_t table_size_min = 512;

bool has_ports(std::uint8_t protocol) noexcept {
  return protocol == static_cast<std::uint8_t>(ip_protocol::udp) ||
         protocol == static_cast<std::uint8_t>(ip_protocol::tcp);
}

// The fields steering reads from an IPv4 header at the start of `b`,
// without the checksum (the owning shard checks it): false if there is no
// header to read.
bool peek_ipv4(std::span<const std::uint8_t> b, ipv4_header& h) noexcept {
  if (b.size() < ipv4_header::min_size || (b[0] >> 4) != 4) return false;
  h.header_length = static_cast<std::uint8_t>((b[0] & 0x0f) * 4);
  if (h.header_length < ipv4_header::min_size || b.size() < h.header_length) return false;
  const std::uint16_t flags = wire::get16(b, 6);
  h.more_fragments = (flags & 0x2000) != 0;
  h.fragment_offset = static_cast<std::uint16_t>((flags & 0x1fff) * 8);
  h.protocol = b[9];
  h.source = wire::get32(b, 12);
  h.destination = wire::get32(b, 16);
  return true;
}

}  // namespace

flow_steering::flow_steering(const device_info& info, steering_config config)
    : _config(config), _queues(info.queues), _hash(info.rss_key) {
  if (_config.shards == 0) throw std::invalid_argument("flow steering: no shards");
  if (_queues == 0) throw std::invalid_argument("flow steering: a device without queues");
  if (_queues > _config.shards) {
    throw std::invalid_argument("flow steering: the device has " + std::to_string(_queues) +
                                " queues for " + std::to_string(_config.shards) +
                                " shards (give it at most one per shard)");
  }
  if (!(_config.hw_queue_weight >= 0 && _config.hw_queue_weight <= 1)) {
    throw std::invalid_argument("flow steering: the hardware queue weight is not in [0, 1]");
  }
  if (_config.ephemeral_first == 0 || _config.ephemeral_first > _config.ephemeral_last) {
    throw std::invalid_argument("flow steering: an empty ephemeral port range");
  }
  std::vector<std::uint16_t> redirection = info.redirection;
  if (redirection.empty()) redirection = redirection_table(_queues, table_size_min).entries();
  std::size_t size = table_size_min;
  while (size < redirection.size()) size *= 2;
  _table.resize(size);
  _mask = static_cast<std::uint32_t>(size - 1);
  // Each queue's entries go to its owner and its followers by smooth
  // weighted round robin: the owner weighs hw_queue_weight, a follower 1.
  struct member {
    unsigned shard;
    double weight;
    double credit = 0;
  };
  std::vector<std::vector<member>> members(_queues);
  for (unsigned q = 0; q < _queues; ++q) {
    members[q].push_back({q, _config.hw_queue_weight});
    for (unsigned s = _queues; s < _config.shards; ++s) {
      if (s % _queues == q) members[q].push_back({s, 1.0});
    }
    if (members[q].size() == 1) members[q][0].weight = 1;  // alone, it takes everything
  }
  for (std::size_t i = 0; i < size; ++i) {
    const unsigned q = redirection[i % redirection.size()] % _queues;
    auto& group = members[q];
    double total = 0;
    member* best = nullptr;
    for (auto& m : group) {
      m.credit += m.weight;
      total += m.weight;
      if (m.weight > 0 && (best == nullptr || m.credit > best->credit)) best = &m;
    }
    best->credit -= total;
    _table[i] = static_cast<std::uint16_t>(best->shard);
  }
}

std::optional<unsigned> flow_steering::port_owner(std::uint8_t protocol, std::uint16_t destination_port) const noexcept {
  if (protocol != static_cast<std::uint8_t>(ip_protocol::udp)) return std::nullopt;
  if (destination_port == dhcp_client_port) return 0;
  if (destination_port >= _config.ephemeral_first && destination_port <= _config.ephemeral_last) {
    return (destination_port - _config.ephemeral_first) % _config.shards;
  }
  return std::nullopt;
}

unsigned flow_steering::shard_of_datagram(std::uint8_t protocol, std::uint32_t source, std::uint32_t destination,
                                          std::uint16_t source_port, std::uint16_t destination_port) const noexcept {
  if (_config.shards == 1) return 0;
  if (auto owner = port_owner(protocol, destination_port)) return *owner;
  return shard_of_hash(_hash.ipv4_ports(source, destination, source_port, destination_port));
}

unsigned flow_steering::shard_of_frame(std::span<const std::uint8_t> frame, std::optional<std::uint32_t> device_hash,
                                       unsigned here) const noexcept {
  if (_config.shards == 1) return 0;
  if (frame.size() < ethernet_header::size ||
      wire::get16(frame, 12) != static_cast<std::uint16_t>(ether_type::ipv4)) {
    return here;
  }
  auto b = frame.subspan(ethernet_header::size);
  ipv4_header h;
  if (!peek_ipv4(b, h)) return here;
  auto data = b.subspan(h.header_length);
  if (!h.is_fragment()) {
    if (has_ports(h.protocol) && data.size() >= 4) {
      const std::uint16_t sport = wire::get16(data, 0);
      const std::uint16_t dport = wire::get16(data, 2);
      if (device_hash && !port_owner(h.protocol, dport)) return shard_of_hash(*device_hash);
      return shard_of_datagram(h.protocol, h.source, h.destination, sport, dport);
    }
    if (h.protocol == static_cast<std::uint8_t>(ip_protocol::icmp) && data.size() >= icmp_header::size &&
        (data[0] == static_cast<std::uint8_t>(icmp_type::destination_unreachable) ||
         data[0] == static_cast<std::uint8_t>(icmp_type::time_exceeded))) {
      // The quoted datagram went from us: its flow is the one whose
      // datagrams come back from its destination.
      ipv4_header quoted;
      auto q = data.subspan(icmp_header::size);
      if (peek_ipv4(q, quoted) && has_ports(quoted.protocol) && quoted.fragment_offset == 0 &&
          q.size() >= std::size_t{quoted.header_length} + 4) {
        return shard_of_datagram(quoted.protocol, quoted.destination, quoted.source,
                                 wire::get16(q, quoted.header_length + 2u), wire::get16(q, quoted.header_length));
      }
    }
  }
  return shard_of_hash(device_hash && !h.is_fragment() ? *device_hash : _hash.ipv4(h.source, h.destination));
}

}  // namespace reef::tcpip
