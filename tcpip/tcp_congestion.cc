#include "tcpip/tcp_congestion.h"

#include <algorithm>
#include <cmath>

#include "core/assert.h"

namespace reef::tcpip {

namespace {

class newreno final : public congestion_control {
 public:
  using congestion_control::congestion_control;

  std::string_view name() const noexcept override { return "newreno"; }

  void on_ack(std::uint32_t bytes, std::chrono::microseconds, std::chrono::microseconds) noexcept override {
    if (bytes == 0) return;
    _timed_out = false;
    if (in_slow_start()) {
      // RFC 5681 3.1 (2): at most one segment per ACK.
      grow(std::min(bytes, _mss));
      return;
    }
    // Congestion avoidance by byte counting (RFC 5681 3.1, RFC 3465):
    // one segment per window's worth of bytes acknowledged.
    _acked += bytes;
    if (_acked >= _cwnd) {
      _acked -= _cwnd;
      grow(_mss);
    }
  }

  void on_congestion(std::uint32_t in_flight) noexcept override {
    // RFC 5681 (4): half what is in flight, at least two segments.
    _ssthresh = std::max(in_flight / 2, 2 * _mss);
    _cwnd = _ssthresh;
    _acked = 0;
  }

  void on_recovered() noexcept override {
    _cwnd = _ssthresh;  // RFC 6582 3.2 (5): deflate to ssthresh
    _acked = 0;
  }

  void on_timeout(std::uint32_t in_flight) noexcept override {
    // RFC 5681 3.1: ssthresh is set by the first timeout, and held while
    // the same data times out again (what is in flight by then is the
    // retransmission, not the window that was too large).
    if (!_timed_out) _ssthresh = std::max(in_flight / 2, 2 * _mss);
    _timed_out = true;
    _cwnd = _mss;  // the loss window
    _acked = 0;
  }

 private:
  std::uint32_t _acked = 0;  // bytes acknowledged toward the next segment of growth
  bool _timed_out = false;   // a timeout with no new data acknowledged since
};

// RFC 9438 with the window in segments (doubles) and time in seconds.
class cubic final : public congestion_control {
 public:
  static constexpr double c = 0.4;
  static constexpr double beta = 0.7;
  // The Reno-friendly estimate's growth per window (RFC 9438 4.3).
  static constexpr double alpha = 3 * (1 - beta) / (1 + beta);

  using congestion_control::congestion_control;

  std::string_view name() const noexcept override { return "cubic"; }

  void on_ack(std::uint32_t bytes, std::chrono::microseconds now, std::chrono::microseconds srtt) noexcept override {
    if (bytes == 0) return;
    _timed_out = false;
    if (in_slow_start()) {
      grow(std::min(bytes, _mss));
      return;
    }
    const double segments = static_cast<double>(_cwnd) / _mss;
    if (!_in_epoch) {
      // The first ACK of a new epoch (RFC 9438 4.2): time starts here.
      _in_epoch = true;
      _epoch_start = now;
      if (_w_max <= segments) {
        _k = 0;
        _w_max = segments;
      } else {
        _k = std::cbrt((_w_max - segments) / c);
      }
      _w_est = segments;
    }
    const double t = std::chrono::duration<double>(now - _epoch_start).count();
    const double rtt = std::chrono::duration<double>(srtt).count();
    const double acked_segments = static_cast<double>(bytes) / _mss;
    _w_est += alpha * acked_segments / segments;
    const double x = t + rtt - _k;
    const double w_cubic = c * x * x * x + _w_max;
    double target;
    if (w_cubic < _w_est) {
      target = _w_est;  // the Reno-friendly region (4.3)
    } else {
      target = std::clamp(w_cubic, segments, 1.5 * segments);  // concave or convex (4.4, 4.5)
    }
    // cwnd grows by (target - cwnd) / cwnd segments per segment acked
    // (never shrinks here: a target below cwnd holds it).
    _pending += std::max(target - segments, 0.0) / segments * acked_segments * _mss;
    if (_pending >= 1) {
      const double whole = std::min(_pending, 4294967295.0);
      grow(static_cast<std::uint32_t>(whole));
      _pending -= static_cast<std::uint32_t>(whole);
    }
  }

  void on_congestion(std::uint32_t) noexcept override { reduce(); }

  void on_recovered() noexcept override {
    _cwnd = std::max(_ssthresh, _mss);
    _pending = 0;
  }

  void on_timeout(std::uint32_t) noexcept override {
    if (!_timed_out) reduce();
    _timed_out = true;
    _cwnd = _mss;
  }

  void on_idle_restart() noexcept override {
    congestion_control::on_idle_restart();
    _in_epoch = false;  // (t would count the idle time as growth)
    _pending = 0;
  }

 private:
  void reduce() noexcept {
    const double segments = static_cast<double>(_cwnd) / _mss;
    // Fast convergence (4.7): a flow losing below its last peak leaves
    // room for others by remembering a lower one.
    _w_max = segments < _w_max ? segments * (1 + beta) / 2 : segments;
    _ssthresh = std::max(static_cast<std::uint32_t>(_cwnd * beta), 2 * _mss);
    _cwnd = _ssthresh;
    _in_epoch = false;
    _pending = 0;
  }

  double _w_max = 0;  // segments, at the last reduction
  double _k = 0;      // seconds until the window is back at _w_max
  double _w_est = 0;  // the Reno-friendly estimate, segments
  double _pending = 0;  // bytes of growth not yet whole
  std::chrono::microseconds _epoch_start{0};
  bool _in_epoch = false;
  bool _timed_out = false;
};

}  // namespace

congestion_control::congestion_control(std::uint32_t mss) noexcept : _mss(mss), _cwnd(initial_window(mss)) {
  REEF_ASSERT(mss > 0 && mss <= 65535, "a TCP segment size is 1 to 65535 bytes");
}

void congestion_control::on_handshake_retransmitted() noexcept { _cwnd = _mss; }

void congestion_control::on_idle_restart() noexcept { _cwnd = std::min(_cwnd, initial_window(_mss)); }

std::uint32_t congestion_control::initial_window(std::uint32_t mss) noexcept {
  const std::uint64_t ten = std::uint64_t{mss} * 10;
  const std::uint64_t floor = std::max<std::uint64_t>(std::uint64_t{mss} * 2, 14600);
  return static_cast<std::uint32_t>(std::min(ten, floor));
}

std::unique_ptr<congestion_control> make_newreno(std::uint32_t mss) { return std::make_unique<newreno>(mss); }

std::unique_ptr<congestion_control> make_cubic(std::uint32_t mss) { return std::make_unique<cubic>(mss); }

}  // namespace reef::tcpip
