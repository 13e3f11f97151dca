#include "tcpip/ipv4_fragment.h"

#include <algorithm>
#include <span>

namespace reef::tcpip {

std::vector<packet> fragment_ipv4(const ipv4_header& h, packet data, std::size_t mtu) {
  std::vector<packet> out;
  mtu = std::min<std::size_t>(mtu, ipv4_header::max_datagram);
  if (mtu < ipv4_header::min_size + 8) return out;
  if (h.fragment_offset + data.len() + ipv4_header::min_size > ipv4_header::max_datagram) return out;
  if (ipv4_header::min_size + data.len() <= mtu) {
    prepend_ipv4_header(h, data);
    out.push_back(std::move(data));
    return out;
  }
  if (h.dont_fragment) return out;
  const std::size_t step = (mtu - ipv4_header::min_size) & ~std::size_t{7};
  const std::size_t total = data.len();
  out.reserve((total + step - 1) / step);
  for (std::size_t at = 0; at < total; at += step) {
    const std::size_t length = std::min(step, total - at);
    ipv4_header piece = h;
    piece.fragment_offset = static_cast<std::uint16_t>(h.fragment_offset + at);
    piece.more_fragments = at + length < total || h.more_fragments;
    packet p = data.share(at, length);
    prepend_ipv4_header(piece, p);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace reef::tcpip
