// TCP's round-trip time estimate and retransmission timeout (RFC 6298):
// SRTT and RTTVAR from each measured round trip (the caller measures
// only segments sent once: Karn's rule), RTO = SRTT + max(G, 4 RTTVAR)
// within [min_rto, max_rto], doubled on each timeout until a new
// measurement.
//
//   tcp_rtt_estimator rtt({.min_rto = 200ms});
//   rtt.sample(31ms);        // an ACK for a segment sent once
//   arm(rtt.rto());
//   rtt.back_off();          // the timer fired: retransmit, wait twice as long
#pragma once

#include <chrono>
#include <cstdint>

namespace reef::tcpip {

struct tcp_rtt_limits {
  std::chrono::microseconds min_rto{200'000};     // Linux's; RFC 6298 says 1 s
  std::chrono::microseconds max_rto{60'000'000};  // RFC 6298 2.5: at least 60 s
  std::chrono::microseconds initial_rto{1'000'000};
  std::chrono::microseconds granularity{1'000};   // G: the timers' tick
};

class tcp_rtt_estimator {
 public:
  explicit tcp_rtt_estimator(tcp_rtt_limits limits = {}) noexcept : _limits(limits), _rto(limits.initial_rto) {
    clamp();
  }

  /// A round trip measured on a segment that was sent once (Karn's rule:
  /// never a retransmitted one). Ends any back-off.
  void sample(std::chrono::microseconds r) noexcept;
  /// The retransmission timer fired: the next timeout is twice as long
  /// (up to max_rto).
  void back_off() noexcept;

  std::chrono::microseconds rto() const noexcept { return _rto; }
  std::chrono::microseconds srtt() const noexcept { return _srtt; }
  std::chrono::microseconds rttvar() const noexcept { return _rttvar; }
  bool has_sample() const noexcept { return _has_sample; }
  /// Timeouts since the last measurement.
  unsigned backoffs() const noexcept { return _backoffs; }

 private:
  void clamp() noexcept;

  tcp_rtt_limits _limits;
  std::chrono::microseconds _srtt{0};
  std::chrono::microseconds _rttvar{0};
  std::chrono::microseconds _rto;
  bool _has_sample = false;
  unsigned _backoffs = 0;
};

}  // namespace reef::tcpip
