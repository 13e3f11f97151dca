#include "tcpip/ipv4_reassembly.h"

#include <cstring>
#include <utility>

#include "core/assert.h"

namespace reef::tcpip {

namespace {

// `data`'s bytes in a buffer of exactly their size.
packet compact_copy(const packet& data) {
  temporary_buffer<char> copy(data.len());
  std::size_t at = 0;
  for (const fragment& f : data.fragments()) {
    std::memcpy(copy.get_write() + at, f.base, f.size);
    at += f.size;
  }
  return packet(std::move(copy));
}

}  // namespace

void ipv4_reassembler::drop(table::iterator it) noexcept {
  _memory -= it->second.charged;
  _order.erase(it->second.in_order);
  _datagrams.erase(it);
}

std::optional<packet> ipv4_reassembler::add(const ipv4_header& h, packet data, time_point now) {
  ++_stats.fragments;
  REEF_ASSERT(data.len() == h.data_length(), "a fragment's data is its header's data length");
  const std::size_t offset = h.fragment_offset;
  const std::size_t length = data.len();
  const std::size_t end = offset + length;
  const key k{h.source, h.destination, h.id, h.protocol};
  auto it = _datagrams.find(k);
  auto fail = [&](std::uint64_t& counter) -> std::optional<packet> {
    ++counter;
    if (it != _datagrams.end()) drop(it);
    return std::nullopt;
  };
  // A piece that is not the last carries a multiple of 8 bytes (the next
  // offset is in 8-byte units); an empty one says nothing.
  if ((h.more_fragments && length % 8 != 0) || length == 0 || end > ipv4_header::max_datagram) {
    return fail(_stats.malformed);
  }
  const std::size_t charge = length + reassembly_limits::piece_overhead;
  // Everything that decides whether the piece is kept comes first: a piece
  // that would be refused makes no room (evicts no one).
  if (it != _datagrams.end()) {
    datagram& d = it->second;
    auto next = d.pieces.lower_bound(static_cast<std::uint16_t>(offset));
    if (next != d.pieces.end() && next->first == offset && next->second.len() == length) {
      // The same piece again; as a last piece it must agree with the size.
      if (!h.more_fragments && d.total != end) return fail(_stats.malformed);
      ++_stats.duplicates;
      return std::nullopt;
    }
    if (!h.more_fragments) {
      // The last piece: the datagram's size. Pieces past it, or another
      // last piece saying otherwise, are lies.
      const bool held_past = !d.pieces.empty() &&
                             std::prev(d.pieces.end())->first + std::prev(d.pieces.end())->second.len() > end;
      if ((d.total && *d.total != end) || held_past) return fail(_stats.malformed);
    } else if (d.total && end > *d.total) {
      return fail(_stats.malformed);
    }
    // Any overlap with the pieces around it drops the datagram.
    const bool overlaps_next = next != d.pieces.end() && next->first < end;
    const bool overlaps_previous =
        next != d.pieces.begin() && std::prev(next)->first + std::prev(next)->second.len() > offset;
    if (overlaps_next || overlaps_previous) return fail(_stats.overlaps);
    if (d.pieces.size() >= _limits.fragments_max) return fail(_stats.too_many);
  }
  const std::size_t needed = charge + (it == _datagrams.end() ? reassembly_limits::datagram_overhead : 0);
  const std::size_t own = it == _datagrams.end() ? 0 : it->second.charged;
  if (own + needed > _limits.memory_max) return fail(_stats.evicted);  // this datagram alone is too big
  // Room: the oldest other datagrams go.
  while (_memory + needed > _limits.memory_max) {
    auto first = _order.begin();
    if (*first == k) ++first;
    REEF_ASSERT(first != _order.end(), "reassembly memory held by no other datagram");
    ++_stats.evicted;
    drop(_datagrams.find(*first));
  }
  packet piece = compact_copy(data);
  if (it == _datagrams.end()) {
    _order.push_back(k);
    try {
      it = _datagrams.emplace(k, datagram{now, {}, 0, 0, std::nullopt, std::prev(_order.end())}).first;
    } catch (...) {
      _order.pop_back();
      throw;
    }
    it->second.charged = reassembly_limits::datagram_overhead;
    _memory += reassembly_limits::datagram_overhead;
  }
  datagram& d = it->second;
  d.pieces.emplace(static_cast<std::uint16_t>(offset), std::move(piece));
  if (!h.more_fragments) d.total = end;
  d.held += length;
  d.charged += charge;
  _memory += charge;
  // Whole: the size is known and the pieces, which do not overlap, cover it.
  if (!d.total || d.held != *d.total) return std::nullopt;
  packet whole;
  for (auto& [at, p] : d.pieces) whole.append(std::move(p));
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
