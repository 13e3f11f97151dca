// IPv4 reassembly (RFC 791 3.2, with RFC 815's bookkeeping made simple):
// one shard's datagrams in pieces, kept until whole, until they time out,
// or until memory runs short. Fragments are hostile: one that overlaps
// another drops its datagram (overlaps are how filters get fooled), a
// datagram may have so many pieces and no more, a non-final piece must be
// a multiple of 8 bytes, and the pieces of every datagram together never
// hold more than the memory cap (the oldest datagrams go first to make
// room). Each drop is counted by its reason.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/timer.h"
#include "net/packet.h"
#include "tcpip/ipv4_header.h"

namespace reef::tcpip {

struct reassembly_limits {
  /// Memory held, all datagrams together: each piece's data (copied into
  /// a buffer of its own size: a piece never keeps a device's larger
  /// buffer alive) plus piece_overhead per piece and datagram_overhead
  /// per datagram, so that a flood of tiny pieces is bounded too.
  std::size_t memory_max = 4 << 20;
  std::chrono::milliseconds timeout{30'000};
  /// Pieces per datagram: a 64 KiB datagram over an MTU of 576 takes 119.
  unsigned fragments_max = 256;
  static constexpr std::size_t piece_overhead = 128;
  static constexpr std::size_t datagram_overhead = 256;
};

struct reassembly_stats {
  std::uint64_t fragments = 0;       // taken in
  std::uint64_t reassembled = 0;     // datagrams made whole
  std::uint64_t duplicates = 0;      // a piece already held, ignored
  std::uint64_t overlaps = 0;        // datagrams dropped for overlapping pieces
  std::uint64_t malformed = 0;       // a non-final piece not a multiple of 8, or lengths that disagree
  std::uint64_t too_many = 0;        // datagrams dropped past fragments_max
  std::uint64_t timed_out = 0;       // datagrams dropped unfinished after the timeout
  std::uint64_t evicted = 0;         // datagrams dropped to keep under memory_max
};

class ipv4_reassembler {
 public:
  using time_point = lowres_clock::time_point;

  explicit ipv4_reassembler(reassembly_limits limits = {}) : _limits(limits) {}

  /// Takes a fragment: its header (`h.is_fragment()`) and its data (the
  /// datagram's bytes after the header, h.data_length() of them: a
  /// frame's padding trimmed). The whole datagram's data, in
  /// order, once the last missing piece arrived; nullopt otherwise.
  std::optional<packet> add(const ipv4_header& h, packet data, time_point now);
  /// Drops the datagrams whose first piece came before now - timeout.
  void expire(time_point now);

  /// Memory held now, bytes (as memory_max counts it).
  std::size_t memory() const noexcept { return _memory; }
  std::size_t datagrams() const noexcept { return _datagrams.size(); }
  const reassembly_stats& stats() const noexcept { return _stats; }

 private:
  struct key {
    std::uint32_t source;
    std::uint32_t destination;
    std::uint16_t id;
    std::uint8_t protocol;
    friend bool operator==(const key&, const key&) = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      std::uint64_t h = (std::uint64_t{k.source} << 32 | k.destination) * 0x9e3779b97f4a7c15ull;
      return static_cast<std::size_t>(h ^ (std::uint64_t{k.id} << 8 | k.protocol));
    }
  };
  struct datagram {
    time_point arrived;  // its first piece
    std::map<std::uint16_t, packet> pieces;  // by offset
    std::size_t held = 0;                    // bytes of data in `pieces`
    std::size_t charged = 0;                 // what it counts for in _memory
    std::optional<std::size_t> total;        // known once the last piece came
    std::list<key>::iterator in_order;       // its place in _order
  };
  using table = std::unordered_map<key, datagram, key_hash>;

  void drop(table::iterator it) noexcept;

  reassembly_limits _limits;
  table _datagrams;
  std::list<key> _order;  // the datagrams, oldest first (eviction is O(1) under a flood)
  std::size_t _memory = 0;
  reassembly_stats _stats;
};

}  // namespace reef::tcpip
