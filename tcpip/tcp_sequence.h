// TCP sequence numbers (RFC 9293 3.4): 32-bit counters compared modulo
// 2^32, so that "before" and "after" hold across the wrap; and initial
// sequence numbers per RFC 6528: a 4-microsecond clock plus a keyed hash
// (SipHash-2-4) of the connection's 4-tuple with a secret, so that an
// off-path attacker cannot guess them and a reused 4-tuple starts past
// its old sequence space.
//
//   tcp_seq a{0xfffffff0}, b = a + 32;   // b wrapped to 16
//   assert(a < b);
//   isn_generator isn;                   // a random secret
//   tcp_seq first = isn(local_ip, local_port, remote_ip, remote_port, now);
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace reef::tcpip {

/// A sequence number. Comparisons are modulo 2^32 (RFC 9293 3.4): a < b
/// when b is less than 2^31 ahead of a. (Not an ordering of all values:
/// two exactly 2^31 apart are each before the other. Never a key of a
/// std::map or a sort.)
class tcp_seq {
 public:
  constexpr tcp_seq() noexcept = default;
  constexpr explicit tcp_seq(std::uint32_t v) noexcept : _v(v) {}
  constexpr std::uint32_t raw() const noexcept { return _v; }

  constexpr tcp_seq operator+(std::uint32_t n) const noexcept { return tcp_seq(_v + n); }
  constexpr tcp_seq operator-(std::uint32_t n) const noexcept { return tcp_seq(_v - n); }
  constexpr tcp_seq& operator+=(std::uint32_t n) noexcept {
    _v += n;
    return *this;
  }
  /// How far `b` is behind `a`: a - b as a signed distance.
  friend constexpr std::int32_t operator-(tcp_seq a, tcp_seq b) noexcept {
    return static_cast<std::int32_t>(a._v - b._v);
  }
  friend constexpr bool operator==(tcp_seq a, tcp_seq b) noexcept = default;
  friend constexpr bool operator<(tcp_seq a, tcp_seq b) noexcept { return a - b < 0; }
  friend constexpr bool operator>(tcp_seq a, tcp_seq b) noexcept { return a - b > 0; }
  friend constexpr bool operator<=(tcp_seq a, tcp_seq b) noexcept { return a - b <= 0; }
  friend constexpr bool operator>=(tcp_seq a, tcp_seq b) noexcept { return a - b >= 0; }

 private:
  std::uint32_t _v = 0;
};

/// SipHash-2-4 of `data` with a 128-bit key (the reference algorithm's
/// output, as a little-endian 64-bit value).
std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t> data) noexcept;

/// 16 bytes from the system's random source (getrandom). Throws
/// std::runtime_error if it fails.
std::array<std::uint8_t, 16> random_secret();

/// Initial sequence numbers (RFC 6528): M + F(4-tuple, secret), M a
/// clock ticking every 4 µs.
class isn_generator {
 public:
  /// A secret from the system's random source.
  isn_generator();
  /// A given secret (tests).
  explicit isn_generator(const std::array<std::uint8_t, 16>& secret) noexcept : _secret(secret) {}

  /// Addresses in host order. `now`: time since any fixed point (the
  /// steady clock's epoch).
  tcp_seq operator()(std::uint32_t local_ip, std::uint16_t local_port, std::uint32_t remote_ip,
                     std::uint16_t remote_port, std::chrono::nanoseconds now) const noexcept;

 private:
  std::array<std::uint8_t, 16> _secret;
};

}  // namespace reef::tcpip
