#include "tcpip/checksum.h"

#include <algorithm>

namespace reef::tcpip {

void checksummer::add(const packet& p, std::size_t limit) noexcept {
  for (const fragment& f : p.fragments()) {
    if (limit == 0) break;
    const std::size_t n = std::min(limit, f.size);
    add(f.base, n);
    limit -= n;
  }
}

}  // namespace reef::tcpip
