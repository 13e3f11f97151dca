#include "tcpip/checksum.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace reef::tcpip {

namespace {

// One's complement sum of `n` (even) bytes as big-endian 16-bit words.
// Native 32-bit loads summed into 64 bits (one add each, no carries to
// chase: 2^32 loads before it could overflow) give the same sum modulo
// 0xffff, since 2^16 and 2^32 are 1 modulo 0xffff; folding with the
// carries added back keeps it, and never turns a nonzero sum into 0.
// Little-endian loads sum the words with their bytes swapped, which one
// final swap undoes.
std::uint16_t sum_words(const std::uint8_t* p, std::size_t n) noexcept {
  REEF_ASSERT(n < (std::size_t{1} << 34), "a checksum over more than 16 GiB at once");
  std::uint64_t sum = 0;
  while (n >= 16) {
    std::uint32_t w[4];
    std::memcpy(w, p, 16);
    sum += std::uint64_t{w[0]} + w[1] + w[2] + w[3];
    p += 16;
    n -= 16;
  }
  while (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
  }
  // 64 -> 32 -> 16 bits, each carry added back in.
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  const auto folded = static_cast<std::uint16_t>(sum);
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint16_t>((folded >> 8) | (folded << 8));
  } else {
    return folded;
  }
}

}  // namespace

void checksummer::add(std::span<const std::uint8_t> bytes) noexcept {
  const std::uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  if (n == 0) return;
  if (_odd) {
    _sum += *p;  // the low half of the word the last call began
    ++p;
    --n;
    _odd = false;
  }
  _sum += sum_words(p, n & ~std::size_t{1});
  if (n & 1) {
    _sum += static_cast<std::uint64_t>(p[n - 1]) << 8;  // the high half of a word
    _odd = true;
  }
}

void checksummer::add(const packet& p) noexcept {
  for (const fragment& f : p.fragments()) add(f.base, f.size);
}

void checksummer::add(const packet& p, std::size_t limit) noexcept {
  for (const fragment& f : p.fragments()) {
    if (limit == 0) break;
    const std::size_t n = std::min(limit, f.size);
    add(f.base, n);
    limit -= n;
  }
}

std::uint16_t checksummer::get() const noexcept {
  std::uint64_t sum = _sum;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::uint16_t checksummer::partial() const noexcept {
  std::uint64_t sum = _sum;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes) noexcept {
  checksummer c;
  c.add(bytes);
  return c.get();
}

}  // namespace reef::tcpip
