// TCP congestion control behind an interface, chosen per connection:
// NewReno's window rules (RFC 5681: slow start, congestion avoidance by
// byte counting; RFC 6928's initial window of 10 segments) and CUBIC
// (RFC 9438, the default, as on Linux: the window grows as a cubic
// function of the time since the last loss, and falls by 30% on one).
//
// The sender's loss recovery (duplicate ACKs, SACK's pipe, RFC 6675)
// calls on_congestion() when it starts a recovery and on_recovered() when
// it ends; the window arithmetic inside a recovery (NewReno's inflation by
// a segment per duplicate ACK, RFC 6582 3.2, or SACK's pipe) is the
// recovery's, on top of cwnd().
//
//   auto cc = make_newreno(1460);
//   cc->on_ack(acked_bytes, now, srtt);       // new data acknowledged
//   cc->on_congestion(bytes_in_flight);       // 3 duplicate ACKs / SACK loss
//   cc->on_timeout(bytes_in_flight);          // the retransmission timer fired
//   send while in_flight < cc->cwnd();
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>

namespace reef::tcpip {

class congestion_control {
 public:
  /// REQUIRES: 0 < mss <= 65535.
  explicit congestion_control(std::uint32_t mss) noexcept;
  virtual ~congestion_control() = default;

  virtual std::string_view name() const noexcept = 0;
  /// `bytes` of new data acknowledged outside a recovery, at `now` (any
  /// fixed origin), with the smoothed round trip `srtt` (0: none yet).
  virtual void on_ack(std::uint32_t bytes, std::chrono::microseconds now, std::chrono::microseconds srtt) noexcept = 0;
  /// A loss found by duplicate ACKs or SACK, with `in_flight` bytes
  /// outstanding: a recovery starts.
  virtual void on_congestion(std::uint32_t in_flight) noexcept = 0;
  /// The recovery ended (everything outstanding at its start is
  /// acknowledged).
  virtual void on_recovered() noexcept = 0;
  /// The retransmission timer fired with `in_flight` bytes outstanding.
  virtual void on_timeout(std::uint32_t in_flight) noexcept = 0;

  /// The SYN or SYN-ACK was sent more than once: the window starts at one
  /// segment (RFC 6928 2, RFC 5681 3.1).
  void on_handshake_retransmitted() noexcept;
  /// Nothing was sent for more than an RTO: the window goes back to at
  /// most the initial one (RFC 5681 4.1). (CUBIC also starts a new epoch.)
  virtual void on_idle_restart() noexcept;

  std::uint32_t cwnd() const noexcept { return _cwnd; }
  std::uint32_t ssthresh() const noexcept { return _ssthresh; }
  std::uint32_t mss() const noexcept { return _mss; }
  bool in_slow_start() const noexcept { return _cwnd < _ssthresh; }

  /// RFC 6928: min(10 MSS, max(2 MSS, 14600 bytes)).
  static std::uint32_t initial_window(std::uint32_t mss) noexcept;

 protected:
  /// cwnd + bytes, saturating.
  void grow(std::uint32_t bytes) noexcept {
    _cwnd = _cwnd > std::numeric_limits<std::uint32_t>::max() - bytes ? std::numeric_limits<std::uint32_t>::max()
                                                                        : _cwnd + bytes;
  }

  std::uint32_t _mss;
  std::uint32_t _cwnd;
  std::uint32_t _ssthresh = std::numeric_limits<std::uint32_t>::max();
};

/// NewReno's window rules (RFC 5681, 6582).
std::unique_ptr<congestion_control> make_newreno(std::uint32_t mss);

/// CUBIC (RFC 9438): C = 0.4, beta = 0.7, fast convergence, and the
/// Reno-friendly region; slow start as NewReno's.
std::unique_ptr<congestion_control> make_cubic(std::uint32_t mss);

}  // namespace reef::tcpip
