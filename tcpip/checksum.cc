#include "tcpip/checksum.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace reef::tcpip {

namespace {

// One's complement sum of `n` (even) bytes as big-endian 16-bit words,
// 8 bytes at a time: the sum of 32-bit halves of native 64-bit loads is
// the same one's complement sum with its bytes swapped (little-endian
// loads), which folding and one final swap undo.
std::uint64_t sum_words(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t sum = 0;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    sum += (w & 0xffffffff) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  // Fold to 16 bits (native order), then swap to big-endian.
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const auto s = static_cast<std::uint16_t>(sum);
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint16_t>((s >> 8) | (s << 8));
  } else {
    return s;
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
