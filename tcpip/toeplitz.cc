#include "tcpip/toeplitz.h"

#include <stdexcept>
#include <string>

#include "core/assert.h"

namespace reef::tcpip {

namespace {

// The key's 32 bits that start at bit `bit` (bit 0: the first byte's
// most significant bit).
std::uint32_t key_window(const toeplitz_key& key, std::size_t bit) noexcept {
  std::uint64_t bits = 0;
  const std::size_t byte = bit / 8;
  for (std::size_t i = 0; i < 5; ++i) {
    bits = (bits << 8) | (byte + i < key.size() ? key[byte + i] : 0);
  }
  return static_cast<std::uint32_t>(bits >> (8 - bit % 8));
}

}  // namespace

std::uint32_t toeplitz_hash_bitwise(const toeplitz_key& key, std::span<const std::uint8_t> input) noexcept {
  REEF_ASSERT(input.size() + 4 <= key.size(), "a Toeplitz input longer than the key allows");
  // For each input bit that is set, the key's 32 bits from that position.
  std::uint32_t hash = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    for (unsigned b = 0; b < 8; ++b) {
      if (input[i] & (0x80u >> b)) hash ^= key_window(key, i * 8 + b);
    }
  }
  return hash;
}

toeplitz_hash::toeplitz_hash(const toeplitz_key& key) noexcept {
  for (std::size_t i = 0; i < input_max; ++i) {
    std::uint32_t bit_value[8];
    for (unsigned b = 0; b < 8; ++b) bit_value[b] = key_window(key, i * 8 + b);
    for (unsigned v = 0; v < 256; ++v) {
      std::uint32_t h = 0;
      for (unsigned b = 0; b < 8; ++b) {
        if (v & (0x80u >> b)) h ^= bit_value[b];
      }
      _table[i][v] = h;
    }
  }
}

std::uint32_t toeplitz_hash::operator()(std::span<const std::uint8_t> input) const noexcept {
  REEF_ASSERT(input.size() <= input_max, "a Toeplitz input longer than the tables cover");
  std::uint32_t hash = 0;
  for (std::size_t i = 0; i < input.size(); ++i) hash ^= _table[i][input[i]];
  return hash;
}

std::uint32_t toeplitz_hash::ipv4(std::uint32_t source, std::uint32_t destination) const noexcept {
  std::uint32_t hash = 0;
  for (unsigned i = 0; i < 4; ++i) {
    hash ^= _table[i][(source >> (24 - 8 * i)) & 0xff];
    hash ^= _table[4 + i][(destination >> (24 - 8 * i)) & 0xff];
  }
  return hash;
}

std::uint32_t toeplitz_hash::ipv4_ports(std::uint32_t source, std::uint32_t destination, std::uint16_t source_port,
                                        std::uint16_t destination_port) const noexcept {
  return ipv4(source, destination) ^ _table[8][source_port >> 8] ^ _table[9][source_port & 0xff] ^
         _table[10][destination_port >> 8] ^ _table[11][destination_port & 0xff];
}

redirection_table::redirection_table(unsigned shards, std::size_t size) : _shards(shards) {
  if (shards == 0 || shards > 65535) {
    throw std::invalid_argument("redirection table: " + std::to_string(shards) + " shards (1 to 65535)");
  }
  if (size < shards || (size & (size - 1)) != 0 || size > (std::size_t{1} << 31)) {
    throw std::invalid_argument("redirection table: " + std::to_string(size) +
                                " entries (a power of two, at least the shards' number)");
  }
  _entries.resize(size);
  for (std::size_t i = 0; i < size; ++i) _entries[i] = static_cast<std::uint16_t>(i % shards);
  _mask = static_cast<std::uint32_t>(size - 1);
}

}  // namespace reef::tcpip
