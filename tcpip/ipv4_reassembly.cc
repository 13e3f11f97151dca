#include "tcpip/ipv4_reassembly.h"

#include <utility>

namespace reef::tcpip {

void ipv4_reassembler::drop(table::iterator it) noexcept {
  _memory -= it->second.held;
  _order.erase(it->second.in_order);
  _datagrams.erase(it);
}

std::optional<packet> ipv4_reassembler::add(const ipv4_header& h, packet data, time_point now) {
  ++_stats.fragments;
  const std::size_t offset = h.fragment_offset;
  const std::size_t length = data.len();
  const key k{h.source, h.destination, h.id, h.protocol};
  auto it = _datagrams.find(k);
  // A piece that is not the last carries a multiple of 8 bytes (the next
  // offset is in 8-byte units); an empty one says nothing.
  if ((h.more_fragments && length % 8 != 0) || length == 0) {
    ++_stats.malformed;
    if (it != _datagrams.end()) drop(it);
    return std::nullopt;
  }
  if (length > _limits.memory_max) {
    ++_stats.evicted;
    if (it != _datagrams.end()) drop(it);
    return std::nullopt;
  }
  // Room first: the oldest datagrams go (this one's own pieces last).
  while (_memory + length > _limits.memory_max) {
    auto first = _order.begin();
    if (*first == k && std::next(first) != _order.end()) ++first;
    auto oldest = _datagrams.find(*first);
    ++_stats.evicted;
    if (oldest == it) it = _datagrams.end();
    drop(oldest);
  }
  if (it == _datagrams.end()) {
    _order.push_back(k);
    try {
      it = _datagrams.emplace(k, datagram{now, {}, 0, std::nullopt, std::prev(_order.end())}).first;
    } catch (...) {
      _order.pop_back();
      throw;
    }
  }
  datagram& d = it->second;
  const std::size_t end = offset + length;
  if (!h.more_fragments) {
    // The last piece: the datagram's size. Pieces past it, or another
    // last piece saying otherwise, are lies.
    if ((d.total && *d.total != end) || (!d.pieces.empty() && std::prev(d.pieces.end())->first +
                                                                      std::prev(d.pieces.end())->second.len() > end)) {
      ++_stats.malformed;
      drop(it);
      return std::nullopt;
    }
    d.total = end;
  } else if (d.total && end > *d.total) {
    ++_stats.malformed;
    drop(it);
    return std::nullopt;
  }
  // The pieces around this one: the same piece again is ignored; any other
  // overlap drops the datagram.
  auto next = d.pieces.lower_bound(static_cast<std::uint16_t>(offset));
  if (next != d.pieces.end() && next->first == offset && next->second.len() == length) {
    ++_stats.duplicates;
    return std::nullopt;
  }
  const bool overlaps_next = next != d.pieces.end() && next->first < end;
  const bool overlaps_previous =
      next != d.pieces.begin() && std::prev(next)->first + std::prev(next)->second.len() > offset;
  if (overlaps_next || overlaps_previous) {
    ++_stats.overlaps;
    drop(it);
    return std::nullopt;
  }
  if (d.pieces.size() >= _limits.fragments_max) {
    ++_stats.too_many;
    drop(it);
    return std::nullopt;
  }
  d.pieces.emplace(static_cast<std::uint16_t>(offset), std::move(data));
  d.held += length;
  _memory += length;
  // Whole: the size is known and the pieces, which do not overlap, cover it.
  if (!d.total || d.held != *d.total) return std::nullopt;
  packet whole;
  for (auto& [at, piece] : d.pieces) whole.append(std::move(piece));
  ++_stats.reassembled;
  drop(it);
  return whole;
}

void ipv4_reassembler::expire(time_point now) {
  // Oldest first: the scan stops at the first that may stay.
  while (!_order.empty()) {
    auto it = _datagrams.find(_order.front());
    if (now - it->second.arrived < _limits.timeout) break;
    ++_stats.timed_out;
    drop(it);
  }
}

}  // namespace reef::tcpip
