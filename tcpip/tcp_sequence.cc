#include "tcpip/tcp_sequence.h"

#include <sys/random.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace reef::tcpip {

namespace {

std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

struct sip_state {
  std::uint64_t v0, v1, v2, v3;
  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
  void absorb(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

}  // namespace

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key, std::span<const std::uint8_t> data) noexcept {
  const std::uint64_t k0 = load_le64(key.data());
  const std::uint64_t k1 = load_le64(key.data() + 8);
  sip_state s{k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573};
  const std::size_t whole = data.size() / 8 * 8;
  for (std::size_t at = 0; at < whole; at += 8) s.absorb(load_le64(data.data() + at));
  // The last block: the bytes left, and the length's low byte on top.
  std::uint64_t last = static_cast<std::uint64_t>(data.size() & 0xff) << 56;
  for (std::size_t i = whole; i < data.size(); ++i) last |= static_cast<std::uint64_t>(data[i]) << (8 * (i - whole));
  s.absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

std::array<std::uint8_t, 16> random_secret() {
  std::array<std::uint8_t, 16> secret{};
  std::size_t got = 0;
  while (got < secret.size()) {
    const ssize_t n = ::getrandom(secret.data() + got, secret.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("random_secret: getrandom() failed");
    got += static_cast<std::size_t>(n);
  }
  return secret;
}

isn_generator::isn_generator() : _secret(random_secret()) {}

tcp_seq isn_generator::operator()(std::uint32_t local_ip, std::uint16_t local_port, std::uint32_t remote_ip,
                                  std::uint16_t remote_port, std::chrono::nanoseconds now) const noexcept {
  std::uint8_t tuple[12];
  std::memcpy(tuple, &local_ip, 4);
  std::memcpy(tuple + 4, &remote_ip, 4);
  std::memcpy(tuple + 8, &local_port, 2);
  std::memcpy(tuple + 10, &remote_port, 2);
  const auto clock = static_cast<std::uint32_t>(now.count() / 4000);  // RFC 6528: M ticks every 4 µs
  return tcp_seq(clock + static_cast<std::uint32_t>(siphash24(_secret, tuple)));
}

}  // namespace reef::tcpip
