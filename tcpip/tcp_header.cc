#include "tcpip/tcp_header.h"

#include <algorithm>

#include "core/assert.h"
#include "tcpip/checksum.h"
#include "tcpip/ipv4_header.h"

namespace reef::tcpip {

namespace {

// Option kinds (RFC 9293, 7323, 2018).
constexpr std::uint8_t end_of_options = 0;
constexpr std::uint8_t no_operation = 1;
constexpr std::uint8_t kind_mss = 2;
constexpr std::uint8_t kind_window_scale = 3;
constexpr std::uint8_t kind_sack_permitted = 4;
constexpr std::uint8_t kind_sack = 5;
constexpr std::uint8_t kind_timestamps = 8;

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return std::uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}
void put16(std::span<std::uint8_t> b, std::size_t at, std::uint16_t v) noexcept {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::span<std::uint8_t> b, std::size_t at, std::uint32_t v) noexcept {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// The options in `bytes` (the header past its 20 bytes) into `out`.
tcp_error parse_options(std::span<const std::uint8_t> bytes, tcp_options& out) noexcept {
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::uint8_t kind = bytes[at];
    if (kind == end_of_options) break;
    if (kind == no_operation) {
      ++at;
      continue;
    }
    if (at + 1 >= bytes.size()) return tcp_error::bad_option;  // no room for its length
    const std::size_t length = bytes[at + 1];
    if (length < 2 || at + length > bytes.size()) return tcp_error::bad_option;
    const auto body = bytes.subspan(at + 2, length - 2);
    switch (kind) {
      case kind_mss:
        if (length != 4) return tcp_error::bad_option_length;
        out.mss = get16(body, 0);
        break;
      case kind_window_scale:
        if (length != 3) return tcp_error::bad_option_length;
        out.window_scale = std::min<std::uint8_t>(body[0], tcp_options::window_scale_max);  // RFC 7323 2.3
        break;
      case kind_sack_permitted:
        if (length != 2) return tcp_error::bad_option_length;
        out.sack_permitted = true;
        break;
      case kind_sack:
        if ((length - 2) % 8 != 0 || length == 2) return tcp_error::bad_option_length;
        out.sack_count = 0;
        for (std::size_t i = 0; i < (length - 2) / 8 && i < tcp_options::sack_blocks_max; ++i) {
          out.sack[i] = tcp_sack_block{get32(body, 8 * i), get32(body, 8 * i + 4)};
          ++out.sack_count;
        }
        break;
      case kind_timestamps:
        if (length != 10) return tcp_error::bad_option_length;
        out.timestamps = std::array<std::uint32_t, 2>{get32(body, 0), get32(body, 4)};
        break;
      default:
        break;  // unknown: skipped by its length
    }
    at += length;
  }
  return tcp_error::none;
}

}  // namespace

const char* to_string(tcp_error e) noexcept {
  switch (e) {
    case tcp_error::none: return "none";
    case tcp_error::truncated: return "truncated";
    case tcp_error::bad_data_offset: return "bad data offset";
    case tcp_error::bad_option: return "bad option";
    case tcp_error::bad_option_length: return "bad option length";
    case tcp_error::bad_checksum: return "bad checksum";
  }
  return "unknown";
}

// The layout is Linux's, every field aligned: MSS; SACK-permitted and
// timestamps together (or each behind NOPs); NOP and window scale; NOP,
// NOP and the SACK blocks that fit. No padding is left over.
std::size_t tcp_options::size_without_sack() const noexcept {
  std::size_t n = 0;
  if (mss) n += 4;
  if (sack_permitted && timestamps) {
    n += 12;
  } else {
    if (timestamps) n += 12;
    if (sack_permitted) n += 4;
  }
  if (window_scale) n += 4;
  return n;
}

std::size_t tcp_options::sack_blocks_fitting() const noexcept {
  if (sack_count == 0) return 0;
  const std::size_t rest = size_without_sack();
  if (rest + 4 + 8 > 40) return 0;
  return std::min(sack_count, (40 - rest - 4) / 8);
}

std::size_t tcp_options::size() const noexcept {
  const std::size_t blocks = sack_blocks_fitting();
  return size_without_sack() + (blocks > 0 ? 4 + 8 * blocks : 0);
}

tcp_error tcp_header::parse(std::span<const std::uint8_t> segment, std::uint32_t source, std::uint32_t destination,
                            tcp_header& out, bool checksum_verified) noexcept {
  if (segment.size() < min_size) return tcp_error::truncated;
  const std::size_t length = static_cast<std::size_t>(segment[12] >> 4) * 4;
  if (length < min_size) return tcp_error::bad_data_offset;
  if (length > segment.size()) return tcp_error::truncated;
  if (!checksum_verified && tcp_checksum(source, destination, segment) != 0) return tcp_error::bad_checksum;
  out.source_port = get16(segment, 0);
  out.destination_port = get16(segment, 2);
  out.seq = get32(segment, 4);
  out.ack = get32(segment, 8);
  out.flags = segment[13];
  out.window = get16(segment, 14);
  out.checksum = get16(segment, 16);
  out.urgent = get16(segment, 18);
  out.header_length = static_cast<std::uint8_t>(length);
  out.options = tcp_options{};
  return parse_options(segment.subspan(min_size, length - min_size), out.options);
}

std::size_t tcp_header::write(std::span<std::uint8_t> out) const noexcept {
  const std::size_t options_size = options.size();
  REEF_ASSERT(options_size <= max_size - min_size, "TCP options past 40 bytes");
  REEF_ASSERT(options.sack_count <= tcp_options::sack_blocks_max, "more SACK blocks than a header holds");
  REEF_ASSERT(!options.window_scale || *options.window_scale <= tcp_options::window_scale_max,
              "a window scale above 14");
  const std::size_t length = min_size + options_size;
  REEF_ASSERT(out.size() >= length, "no room for a TCP header");
  put16(out, 0, source_port);
  put16(out, 2, destination_port);
  put32(out, 4, seq);
  put32(out, 8, ack);
  out[12] = static_cast<std::uint8_t>(length / 4 << 4);
  out[13] = flags;
  put16(out, 14, window);
  put16(out, 16, 0);
  put16(out, 18, urgent);
  std::size_t at = min_size;
  auto nop = [&] { out[at++] = no_operation; };
  if (options.mss) {
    out[at] = kind_mss;
    out[at + 1] = 4;
    put16(out, at + 2, *options.mss);
    at += 4;
  }
  auto write_timestamps = [&] {
    out[at] = kind_timestamps;
    out[at + 1] = 10;
    put32(out, at + 2, (*options.timestamps)[0]);
    put32(out, at + 6, (*options.timestamps)[1]);
    at += 10;
  };
  if (options.sack_permitted && options.timestamps) {
    out[at] = kind_sack_permitted;
    out[at + 1] = 2;
    at += 2;
    write_timestamps();
  } else {
    if (options.timestamps) {
      nop();
      nop();
      write_timestamps();
    }
    if (options.sack_permitted) {
      nop();
      nop();
      out[at] = kind_sack_permitted;
      out[at + 1] = 2;
      at += 2;
    }
  }
  if (options.window_scale) {
    nop();
    out[at] = kind_window_scale;
    out[at + 1] = 3;
    out[at + 2] = *options.window_scale;
    at += 3;
  }
  const std::size_t blocks = options.sack_blocks_fitting();
  if (blocks > 0) {
    nop();
    nop();
    out[at] = kind_sack;
    out[at + 1] = static_cast<std::uint8_t>(2 + 8 * blocks);
    at += 2;
    for (std::size_t i = 0; i < blocks; ++i) {
      put32(out, at, options.sack[i].left);
      put32(out, at + 4, options.sack[i].right);
      at += 8;
    }
  }
  REEF_ASSERT(at == length, "TCP options written other than sized");
  return length;
}

std::uint16_t tcp_checksum(std::uint32_t source, std::uint32_t destination,
                           std::span<const std::uint8_t> segment) noexcept {
  checksummer c;
  REEF_ASSERT(segment.size() <= 65535, "a TCP segment longer than an IPv4 datagram holds");
  c.add_words(ipv4_pseudo_header_sum(source, destination, ip_protocol::tcp,
                                     static_cast<std::uint16_t>(segment.size())));
  c.add(segment);
  return c.get();
}

}  // namespace reef::tcpip
