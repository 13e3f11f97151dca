// Flow steering in software: the Toeplitz hash that NICs compute for
// receive-side scaling (RSS), and the redirection table that maps a hash
// to a shard. A device that supplies no hash per packet gets this one, so
// a flow lands on the same shard whether a NIC or Reef hashed it.
//
//   toeplitz_hash h;                                 // the default key
//   std::uint32_t x = h.ipv4_ports(src, dst, sport, dport);
//   redirection_table t(smp::count);
//   unsigned shard = t.shard_of(x);
//
// The input is what Microsoft's RSS specification (and DPDK, and Linux)
// hash, in network byte order: the source address, the destination
// address, then the source and destination ports. Addresses and ports are
// given here in host byte order, as numbers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace reef::tcpip {

/// Bytes of a Toeplitz key: 40, enough for IPv6 with ports (36 bytes of
/// input) and what NICs take.
inline constexpr std::size_t toeplitz_key_size = 40;
using toeplitz_key = std::array<std::uint8_t, toeplitz_key_size>;

/// The key of Microsoft's RSS specification ("Verifying the RSS Hash
/// Calculation"), which most NIC drivers use by default: Reef's default,
/// so that software and hardware agree on a device left as it came.
inline constexpr toeplitz_key default_toeplitz_key = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

/// The Toeplitz hash of inputs of up to 12 bytes (IPv4 with ports), by
/// table: one lookup per input byte. Tables are built once per key
/// (12 KiB); hashing allocates nothing.
class toeplitz_hash {
 public:
  /// Bytes of input the tables cover.
  static constexpr std::size_t input_max = 12;

  explicit toeplitz_hash(const toeplitz_key& key = default_toeplitz_key) noexcept;

  /// The hash of `input` (at most input_max bytes; more is a bug:
  /// asserted).
  std::uint32_t operator()(std::span<const std::uint8_t> input) const noexcept;
  /// An IPv4 pair: the hash NICs use for packets without ports (IP
  /// fragments, protocols other than TCP and UDP).
  std::uint32_t ipv4(std::uint32_t source, std::uint32_t destination) const noexcept;
  /// An IPv4 4-tuple (TCP, UDP).
  std::uint32_t ipv4_ports(std::uint32_t source, std::uint32_t destination, std::uint16_t source_port,
                           std::uint16_t destination_port) const noexcept;

 private:
  // _table[i][b]: what byte value b at input position i adds (XOR).
  std::array<std::array<std::uint32_t, 256>, input_max> _table;
};

/// The Toeplitz hash of `input` by its definition, bit by bit, for any
/// input up to the key's size less 4 bytes (36: IPv6 with ports). Slow:
/// for tests and for inputs the tables do not cover.
std::uint32_t toeplitz_hash_bitwise(const toeplitz_key& key, std::span<const std::uint8_t> input) noexcept;

/// Which shard a hash belongs to: the hash's low bits index a table of
/// shards (as a NIC's redirection table indexes its queues).
class redirection_table {
 public:
  /// Entries of the default table: a power of two, as in NICs (most have
  /// 128 or 512), and many per shard so that shards get even shares.
  static constexpr std::size_t default_size = 512;

  /// `shards` shards (at least 1) in turn over `size` entries (a power of
  /// two, at least `shards`). Throws std::invalid_argument otherwise.
  explicit redirection_table(unsigned shards, std::size_t size = default_size);

  unsigned shard_of(std::uint32_t hash) const noexcept { return _entries[hash & _mask]; }
  std::size_t size() const noexcept { return _entries.size(); }
  unsigned shards() const noexcept { return _shards; }
  /// The entries, in order (for a NIC's table to be set the same).
  const std::vector<std::uint16_t>& entries() const noexcept { return _entries; }

 private:
  std::vector<std::uint16_t> _entries;
  std::uint32_t _mask;
  unsigned _shards;
};

/// A local port for a flow from this shard to `remote_ip`:`remote_port`
/// whose replies hash back to `shard`: the packets that come back are
/// hashed with the remote end as their source. Tries the ports from
/// `start` through `last`, then from `first`, and returns the first that
/// `is_free(port)` also takes; nullopt if none (on a table of n shards,
/// about 1 port in n qualifies).
template <typename IsFree>
std::optional<std::uint16_t> port_for_shard(const toeplitz_hash& hash, const redirection_table& table, unsigned shard,
                                            std::uint32_t local_ip, std::uint32_t remote_ip,
                                            std::uint16_t remote_port, std::uint16_t first, std::uint16_t last,
                                            std::uint16_t start, IsFree&& is_free) {
  if (first > last) return std::nullopt;
  if (start < first || start > last) start = first;
  const std::uint32_t count = std::uint32_t{last} - first + 1;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto port = static_cast<std::uint16_t>(first + (std::uint32_t{start} - first + i) % count);
    if (table.shard_of(hash.ipv4_ports(remote_ip, local_ip, remote_port, port)) == shard && is_free(port)) {
      return port;
    }
  }
  return std::nullopt;
}

}  // namespace reef::tcpip
