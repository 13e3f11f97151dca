#include "tcpip/tcp_congestion.h"

#include <algorithm>

#include "core/assert.h"

namespace reef::tcpip {

namespace {

class newreno final : public congestion_control {
 public:
  using congestion_control::congestion_control;

  std::string_view name() const noexcept override { return "newreno"; }

  void on_ack(std::uint32_t bytes) noexcept override {
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
  void grow(std::uint32_t bytes) noexcept {
    _cwnd = _cwnd > std::numeric_limits<std::uint32_t>::max() - bytes ? std::numeric_limits<std::uint32_t>::max()
                                                                        : _cwnd + bytes;
  }

  std::uint32_t _acked = 0;  // bytes acknowledged toward the next segment of growth
  bool _timed_out = false;   // a timeout with no new data acknowledged since
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

}  // namespace reef::tcpip
