#include "tcpip/ethernet.h"

#include "core/text.h"

namespace reef::tcpip {

std::optional<ethernet_address> ethernet_address::parse(std::string_view text) noexcept {
  // Six pairs of hex digits, five colons: 17 characters.
  if (text.size() != 17) return std::nullopt;
  ethernet_address a;
  for (std::size_t i = 0; i < 6; ++i) {
    const int high = text::hex_digit(text[i * 3]);
    const int low = text::hex_digit(text[i * 3 + 1]);
    if (high < 0 || low < 0 || (i < 5 && text[i * 3 + 2] != ':')) return std::nullopt;
    a.bytes[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return a;
}

std::string ethernet_address::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(17);
  for (std::size_t i = 0; i < 6; ++i) {
    if (i > 0) out += ':';
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

std::optional<ethernet_header> ethernet_header::parse(std::span<const std::uint8_t> frame) noexcept {
  ethernet_header h;
  if (parse(frame, h) != ethernet_error::none) return std::nullopt;
  return h;
}

}  // namespace reef::tcpip
