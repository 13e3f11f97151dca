#include "tcpip/tcp_rtt.h"

#include <algorithm>

namespace reef::tcpip {

void tcp_rtt_estimator::sample(std::chrono::microseconds r) noexcept {
  using std::chrono::microseconds;
  r = std::max(r, microseconds(0));
  if (!_has_sample) {
    // RFC 6298 2.2.
    _srtt = r;
    _rttvar = r / 2;
    _has_sample = true;
  } else {
    // RFC 6298 2.3: RTTVAR first, with the old SRTT; alpha 1/8, beta 1/4.
    const microseconds delta = _srtt > r ? _srtt - r : r - _srtt;
    _rttvar = (_rttvar * 3 + delta) / 4;
    _srtt = (_srtt * 7 + r) / 8;
  }
  _rto = _srtt + std::max(_limits.granularity, _rttvar * 4);
  _backoffs = 0;
  clamp();
}

void tcp_rtt_estimator::back_off() noexcept {
  // RFC 6298 5.5.
  _rto = _rto > _limits.max_rto / 2 ? _limits.max_rto : _rto * 2;  // (no overflow with a huge maximum)
  ++_backoffs;
  clamp();
}

void tcp_rtt_estimator::clamp() noexcept {
  // (A maximum set below the minimum yields to it.)
  _rto = std::clamp(_rto, _limits.min_rto, std::max(_limits.min_rto, _limits.max_rto));
}

}  // namespace reef::tcpip
