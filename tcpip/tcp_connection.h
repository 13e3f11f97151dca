// One TCP connection's state machine (RFC 9293), without I/O: segments
// come in through receive(), time through on_timer(), the application's
// bytes through send() and read(); segments go out through the transmit
// function given at construction, and next_deadline() says when on_timer()
// wants to run next. The shard's TCP layer (tcpip/tcp.h) drives it from
// the network and a timer; tests drive it by hand, segment by segment,
// with a clock of their own.
//
//   tcp_connection c(config, tuple, isn, [&](tcp_header& h, packet&& p) { out(h, p); }, stats);
//   c.connect(now);                       // SYN
//   c.receive(syn_ack, packet(), now);    // ESTABLISHED, ACK sent
//   c.send(packet::copy_of("GET /"), now);
//   while (auto b = c.read()) { ... }
//   c.on_timer(now) when now >= c.next_deadline();
//
// What it speaks: the handshake with MSS, window scaling, timestamps and
// SACK-permitted (each used only when both ends offer it); every state of
// RFC 9293 3.3.2 with simultaneous open and close and half-close; the
// retransmission timer (RFC 6298, Karn's rule, back-off, a reset after
// too many retries); fast retransmit and NewReno recovery (RFC 6582), or
// SACK recovery (RFC 6675) when SACK is on; D-SACK sent for duplicates
// (RFC 2883) and recognised when received; tail loss probes (RFC 8985 7)
// with early retransmit (RFC 5827) for small flights, and retransmissions
// found lost by SACK sent again; PAWS (RFC 7323); RFC 5961's
// challenge ACKs; delayed ACKs (every second full segment, else within
// 40 ms); Nagle's rule unless no_delay; zero-window probes; keepalive;
// TIME_WAIT. An out-of-order queue bounded by the receive buffer.
//
// Thread rules: one shard. Callbacks (transmit, on_change) run inside the
// call that caused them; on_change may call back into the connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include "core/circular_buffer.h"
#include "core/function.h"
#include "core/temporary_buffer.h"
#include "net/api.h"
#include "net/packet.h"
#include "tcpip/tcp_congestion.h"
#include "tcpip/tcp_header.h"
#include "tcpip/tcp_rtt.h"
#include "tcpip/tcp_sequence.h"

namespace reef::tcpip {

/// Time as the TCP code sees it: since any fixed point (the layer's clock,
/// or the test's).
using tcp_time = std::chrono::microseconds;
inline constexpr tcp_time tcp_time_never = tcp_time::max();

enum class tcp_state : std::uint8_t {
  closed,
  syn_sent,
  syn_received,
  established,
  fin_wait_1,
  fin_wait_2,
  close_wait,
  closing,
  last_ack,
  time_wait,
};

/// "ESTABLISHED", as RFC 9293 writes the states.
const char* to_string(tcp_state s) noexcept;

enum class tcp_congestion_algorithm : std::uint8_t { cubic, newreno };

struct tcp_config {
  /// The largest segment we take (our MSS option): the MTU less 40.
  std::uint16_t mss = 1460;
  /// Bytes the application may have queued and not yet acknowledged.
  std::uint32_t send_buffer = 1 << 20;
  /// The largest receive window (the window grows up to it as the
  /// application keeps up: autotuning); its window scale follows.
  std::uint32_t receive_buffer = 4 << 20;
  /// The window a connection starts with.
  std::uint32_t initial_receive_window = 64 << 10;
  bool window_scaling = true;
  bool timestamps = true;
  bool sack = true;
  tcp_congestion_algorithm congestion = tcp_congestion_algorithm::cubic;
  tcp_rtt_limits rtt;
  /// Retransmissions of a SYN or SYN-ACK before the connect fails.
  unsigned syn_retries = 6;
  /// Retransmissions of the same data, or window probes in a row that
  /// get no answer at all, before the connection is reset (ETIMEDOUT). A
  /// peer that answers probes with a closed window keeps the connection.
  unsigned retries = 15;
  std::chrono::microseconds delayed_ack{40'000};
  /// TIME_WAIT's length: 2 MSL.
  std::chrono::microseconds time_wait{60'000'000};
  /// How long a connection the application let go waits in FIN_WAIT_2.
  std::chrono::microseconds fin_wait_2{60'000'000};
  /// Challenge ACKs (RFC 5961) a connection sends a second, at most.
  unsigned challenge_acks_per_second = 10;
  bool no_delay = false;
  bool keepalive = false;
  tcp_keepalive_params keepalive_params;
  /// The most payload one segment handed down may carry when the device
  /// cuts segments itself (TSO: every piece but the last one MSS long,
  /// each with the header's options); 0: one MSS. Segments past one MSS
  /// are whole MSSs unless they end the data queued.
  std::uint32_t tso_bytes = 0;
};

/// Counts kept by a shard's TCP (each connection adds to them).
struct tcp_stats {
  std::uint64_t segments_received = 0;
  std::uint64_t segments_sent = 0;
  std::uint64_t retransmitted = 0;          // segments sent again
  std::uint64_t timeouts = 0;               // retransmission timer expiries
  std::uint64_t fast_retransmits = 0;       // recoveries entered
  std::uint64_t resets_received = 0;
  std::uint64_t resets_sent = 0;
  std::uint64_t challenge_acks = 0;         // RFC 5961
  std::uint64_t out_of_window = 0;          // segments outside the receive window
  std::uint64_t paws_rejected = 0;          // old timestamps (RFC 7323 5)
  std::uint64_t bad_acks = 0;               // ACKs of data never sent
  std::uint64_t syn_fin_dropped = 0;        // SYN with FIN: dropped
  std::uint64_t out_of_order = 0;           // segments queued past a hole
  std::uint64_t out_of_order_dropped = 0;   // no room in the out-of-order queue
  std::uint64_t dsacks_sent = 0;
  std::uint64_t dsacks_received = 0;
  std::uint64_t window_probes = 0;
  std::uint64_t keepalive_probes = 0;
  std::uint64_t connections_timed_out = 0;  // too many retransmissions, probes or keepalives
  std::uint64_t lost_retransmits = 0;       // retransmissions found lost by SACK, sent again
  std::uint64_t tail_loss_probes = 0;       // RFC 8985 7: a segment sent at the probe timeout

  tcp_stats& operator+=(const tcp_stats& o) noexcept;
};

/// A connection's view of itself, like Linux's tcp_info.
struct tcp_info {
  tcp_state state = tcp_state::closed;
  std::chrono::microseconds rtt{0};
  std::chrono::microseconds rttvar{0};
  std::chrono::microseconds rto{0};
  std::uint32_t cwnd = 0;      // bytes
  std::uint32_t ssthresh = 0;  // bytes
  std::uint32_t snd_mss = 0;   // payload bytes per segment we send
  std::uint32_t snd_wnd = 0;   // the peer's window, scaled
  std::uint32_t rcv_wnd = 0;   // the window we offer
  std::uint8_t snd_wscale = 0;
  std::uint8_t rcv_wscale = 0;
  bool timestamps = false;
  bool sack = false;
  std::uint64_t bytes_sent = 0;      // payload, first transmissions
  std::uint64_t bytes_acked = 0;
  std::uint64_t bytes_received = 0;  // in order
  std::uint64_t retransmits = 0;     // segments sent again
  std::uint32_t backoffs = 0;        // timeouts since the last progress
  std::uint32_t unacked = 0;         // bytes in flight
};

/// Ports (and addresses, host order) of a connection, from our side.
struct tcp_tuple {
  std::uint32_t local_ip = 0;
  std::uint16_t local_port = 0;
  std::uint32_t remote_ip = 0;
  std::uint16_t remote_port = 0;
  friend bool operator==(const tcp_tuple&, const tcp_tuple&) = default;
};

class tcp_connection {
 public:
  /// Sends one segment: the header (ports, sequence numbers, flags,
  /// window, options set; the checksum is the caller's) and the payload.
  using transmit_function = noncopyable_function<void(tcp_header&, packet&&)>;

  /// A connection in CLOSED whose first sequence number is `isn`.
  tcp_connection(const tcp_config& config, const tcp_tuple& tuple, tcp_seq isn, transmit_function transmit,
                 tcp_stats& stats);
  ~tcp_connection();
  tcp_connection(const tcp_connection&) = delete;
  tcp_connection& operator=(const tcp_connection&) = delete;

  /// Active open: sends the SYN (SYN_SENT).
  void connect(tcp_time now);
  /// Passive open from a listener's `syn` (its options taken): sends the
  /// SYN-ACK (SYN_RECEIVED).
  void accept(const tcp_header& syn, tcp_time now);
  /// Passive open from a SYN cookie (RFC 4987): the handshake's last ACK
  /// `ack` arrived and the cookie in it checked out, giving the peer's
  /// MSS (and whether it offered window scaling (its shift), SACK and
  /// timestamps, where the cookie carries them). ESTABLISHED at once.
  struct cookie_options {
    std::uint16_t mss = 536;
    std::optional<std::uint8_t> window_scale;
    bool sack = false;
    bool timestamps = false;
  };
  void accept_cookie(const tcp_header& ack, packet&& payload, const cookie_options& options, tcp_time now);

  /// A segment for this connection, its header checked (checksum, data
  /// offset, options).
  void receive(const tcp_header& h, packet&& payload, tcp_time now);
  /// Runs what is due at `now` (retransmissions, delayed ACKs, probes,
  /// keepalives, TIME_WAIT's end).
  void on_timer(tcp_time now);
  /// When on_timer() wants to run next; tcp_time_never when nothing waits.
  tcp_time next_deadline() const noexcept;

  /// Queues `data` to send and sends what the windows allow. The caller
  /// keeps send_space() in mind (a send past it is taken all the same).
  /// REQUIRES: can_send().
  void send(packet&& data, tcp_time now);
  /// Whether send() may be called: connected, or connecting, and not shut
  /// down for output.
  bool can_send() const noexcept;
  /// Bytes send() may still queue before the send buffer is full.
  std::size_t send_space() const noexcept;
  /// Bytes queued and not yet acknowledged.
  std::size_t send_queued() const noexcept { return _send_bytes; }
  /// What the out-of-order queue holds (bytes, with their frames'
  /// overhead), bounded by the receive buffer.
  std::size_t held() const noexcept { return _out_of_order_cost; }
  /// The next byte expected from the peer (RCV.NXT).
  tcp_seq next_expected() const noexcept { return _rcv_nxt; }

  /// The next received bytes in order (empty: none now; see eof()).
  temporary_buffer<char> read(tcp_time now);
  std::size_t readable() const noexcept { return _readable_bytes; }
  /// The peer sent FIN and everything before it has been read.
  bool eof() const noexcept { return _fin_received && _readable.empty(); }

  /// No more sending: a FIN after the queued bytes (half-close).
  void shutdown_output(tcp_time now);
  /// No more reading: what is unread, and what comes later, is discarded.
  void shutdown_input(tcp_time now);
  /// The application let the connection go: what is queued is still
  /// sent and FIN follows; unread bytes (or bytes arriving later) reset
  /// the connection, as Linux does.
  void release(tcp_time now);
  /// Resets the connection: RST sent (when synchronized), CLOSED.
  void abort(tcp_time now);

  /// Why the connection failed: ECONNREFUSED, ECONNRESET, ETIMEDOUT,
  /// ECONNABORTED (abort()); empty while it has not.
  std::error_code error() const noexcept { return _error; }
  tcp_state state() const noexcept { return _state; }
  /// ESTABLISHED or past it (connect() succeeded), even if closed since.
  bool was_established() const noexcept { return _was_established; }
  /// Whether the connection is done with, for the layer to forget: CLOSED
  /// after being used.
  bool finished() const noexcept { return _state == tcp_state::closed && _opened; }
  /// RFC 6191: whether a new SYN `syn` may take this connection's 4-tuple
  /// while it is in TIME_WAIT (its timestamp, or else its sequence
  /// number, is past this connection's).
  bool accepts_new_syn(const tcp_header& syn) const noexcept;

  /// Called after a call that changed what the application sees (bytes
  /// to read, room to send, the state, an error).
  void set_on_change(noncopyable_function<void()> f) { _on_change = std::move(f); }

  void set_no_delay(bool on, tcp_time now);
  bool no_delay() const noexcept { return _config.no_delay; }
  void set_keepalive(bool on, tcp_time now);
  bool keepalive() const noexcept { return _config.keepalive; }
  void set_keepalive_params(const tcp_keepalive_params& p, tcp_time now);
  const tcp_keepalive_params& keepalive_params() const noexcept { return _config.keepalive_params; }
  void set_send_buffer(std::uint32_t bytes, tcp_time now);
  std::uint32_t send_buffer() const noexcept { return _config.send_buffer; }
  /// Takes effect for the window scale only before the handshake.
  void set_receive_buffer(std::uint32_t bytes);
  std::uint32_t receive_buffer() const noexcept { return _config.receive_buffer; }

  tcp_info info() const noexcept;
  const tcp_tuple& tuple() const noexcept { return _tuple; }
  /// Payload bytes per segment on the wire for the segment being sent
  /// (what TSO cuts a longer one into): the MSS less the SACK blocks it
  /// carries.
  std::uint32_t segment_size() const noexcept { return _segment_size; }

  /// The TSval a connection whose first sequence number is `isn` sends at
  /// `now`: milliseconds plus an offset of its own (for SYN cookies,
  /// which send one before the connection exists).
  static std::uint32_t timestamp_at(tcp_seq isn, tcp_time now) noexcept {
    return static_cast<std::uint32_t>(now.count() / 1000) + isn.raw() * 0x9e3779b9u;
  }

 private:
  struct held_segment {  // out of order, waiting for the hole before it
    tcp_seq seq;
    packet data;
    bool fin;
    std::size_t cost;  // counted in _out_of_order_cost
  };

  // Input.
  void receive_in_syn_sent(const tcp_header& h, tcp_time now);
  bool check_sequence(const tcp_header& h, std::size_t length, tcp_time now);
  bool process_ack(const tcp_header& h, std::size_t length, tcp_time now);
  void process_sack(const tcp_header& h);
  void process_data(const tcp_header& h, packet&& payload, tcp_time now);
  void process_fin(tcp_time now);
  // The peer's SYN: its sequence number, options, timestamp and window.
  void take_syn(const tcp_header& syn, tcp_time now);
  void take_options(const tcp_options& peer);
  void enter_established(tcp_time now);
  void update_ts_recent(const tcp_header& h, tcp_time now);
  void deliver(packet&& data);
  void hold_out_of_order(tcp_seq seq, packet&& data, bool fin);
  void pull_out_of_order(tcp_time now);

  // Output.
  void output(tcp_time now);
  bool send_new_segment(tcp_time now);
  std::uint32_t current_mss() const noexcept;
  void send_range(tcp_seq seq, std::uint32_t max_length, tcp_time now);
  void send_syn(tcp_time now);
  void send_first_syn(tcp_time now);
  void send_ack(tcp_time now);
  void send_challenge_ack(tcp_time now);
  void send_probe(tcp_time now);
  void send_reset(tcp_time now);
  void emit(tcp_header& h, packet&& payload, tcp_time now);
  std::uint32_t window_to_offer() noexcept;
  void maybe_send_window_update(tcp_time now);

  // Loss recovery.
  std::uint32_t in_flight() const noexcept;
  std::uint32_t sacked_bytes() const noexcept;
  std::uint32_t loss_threshold() const noexcept;
  tcp_seq lost_boundary() const noexcept;
  bool sack_says_lost() const noexcept;
  void check_lost_retransmission() noexcept;
  void enter_recovery(tcp_time now);
  bool retransmit_next_hole(tcp_time now);
  void on_retransmission_timeout(tcp_time now);

  // Timers.
  void arm_rto(tcp_time now) noexcept;
  void arm_persist(tcp_time now) noexcept;
  void arm_probe(tcp_time now) noexcept;
  void send_tail_loss_probe(tcp_time now);
  void enter_time_wait(tcp_time now);
  void clear_timers() noexcept;
  void fail(std::error_code e, tcp_time now);
  void become(tcp_state s) noexcept;
  void changed() noexcept { _changed = true; }
  void notify();

  std::uint32_t ts_value(tcp_time now) const noexcept;
  tcp_seq data_end() const noexcept { return _send_base + static_cast<std::uint32_t>(_send_bytes); }
  bool fin_acked() const noexcept { return _fin_sent && _snd_una > _fin_seq; }

  tcp_config _config;
  tcp_tuple _tuple;
  transmit_function _transmit;
  tcp_stats& _stats;
  noncopyable_function<void()> _on_change;
  tcp_state _state = tcp_state::closed;
  std::error_code _error;
  bool _opened = false;
  bool _was_established = false;
  bool _passive = false;
  bool _released = false;
  bool _changed = false;

  // Options, as agreed.
  std::uint16_t _peer_mss = 536;
  std::uint32_t _snd_mss = 536;     // payload per segment we send, without SACK blocks
  std::uint32_t _segment_size = 536;  // current_mss() for the segment being sent
  std::uint32_t _rcv_mss = 536;     // the peer's segments' payload, as seen
  std::uint8_t _snd_wscale = 0;     // the peer's shift
  std::uint8_t _rcv_wscale = 0;     // ours
  bool _wscale_ok = false;
  bool _ts_ok = false;
  bool _sack_ok = false;
  std::uint32_t _ts_recent = 0;
  tcp_time _ts_recent_at{0};

  // Sending.
  tcp_seq _iss;
  tcp_seq _snd_una;
  tcp_seq _snd_nxt;
  tcp_seq _snd_max;                 // the highest sequence number sent + 1
  std::uint32_t _snd_wnd = 0;
  std::uint32_t _max_snd_wnd = 0;
  tcp_seq _snd_wl1;
  tcp_seq _snd_wl2;
  circular_buffer<packet> _send_queue;  // bytes from _send_base, unacknowledged and unsent
  tcp_seq _send_base;
  std::size_t _send_bytes = 0;
  bool _fin_queued = false;
  bool _fin_sent = false;
  tcp_seq _fin_seq;
  std::unique_ptr<congestion_control> _cc;
  tcp_rtt_estimator _rtt;
  bool _rtt_timing = false;         // without timestamps: one segment timed
  tcp_seq _rtt_seq;
  tcp_time _rtt_sent_at{0};
  tcp_time _last_sent_at{0};

  // Loss recovery.
  unsigned _dupacks = 0;
  bool _in_recovery = false;
  tcp_seq _recover;                 // _snd_max when the recovery (or a timeout) began
  std::uint32_t _inflation = 0;     // NewReno: a segment per duplicate ACK
  std::vector<tcp_sack_block> _scoreboard;  // SACKed above _snd_una, sorted, apart
  tcp_seq _high_rxt;                // RFC 6675 HighRxt
  // Lost retransmissions: _snd_max when this pass over the holes sent its
  // first; data sent after that being SACKed while the first hole stays
  // open means the retransmission was lost too, and the pass starts over
  // (RACK's idea, RFC 8985, on the scoreboard) rather than waiting for
  // the timer.
  tcp_seq _pass_mark;
  bool _pass_marked = false;

  // Receiving.
  tcp_seq _irs;
  tcp_seq _rcv_nxt;
  tcp_seq _rcv_adv;                 // the right edge we offered last
  std::uint32_t _rcv_space;         // the window's size now (autotuned)
  tcp_seq _last_ack_sent;
  circular_buffer<temporary_buffer<char>> _readable;
  std::size_t _readable_bytes = 0;
  temporary_buffer<char> _gather;   // small segments are copied together into this
  std::size_t _gather_used = 0;
  bool _back_is_gather = false;
  std::vector<held_segment> _out_of_order;  // sorted by seq, apart
  std::size_t _out_of_order_cost = 0;
  std::vector<tcp_seq> _recent_held;  // held segments' starts, the latest first (SACK's order)
  std::optional<tcp_sack_block> _dsack;        // a duplicate to report once
  bool _fin_received = false;
  bool _input_shut = false;
  std::uint32_t _unacked_bytes = 0;  // in-order bytes since our last ACK
  std::uint64_t _read_in_round = 0;  // autotuning: bytes read this round trip
  tcp_time _round_started{0};

  // Timers.
  tcp_time _rto_at = tcp_time_never;
  tcp_time _probe_at = tcp_time_never;  // tail loss probe (RFC 8985 7)
  bool _probe_out = false;              // one sent, no progress since
  tcp_time _delack_at = tcp_time_never;
  tcp_time _persist_at = tcp_time_never;
  tcp_time _keepalive_at = tcp_time_never;
  tcp_time _time_wait_at = tcp_time_never;
  tcp_time _fin_wait_2_at = tcp_time_never;
  unsigned _retries = 0;            // retransmissions of the same data / probes unanswered
  unsigned _probes = 0;             // window probes unanswered
  unsigned _persist_backoff = 0;    // doublings of the persist timer since the window closed
  unsigned _keepalives_sent = 0;
  tcp_time _last_received{0};
  tcp_time _challenge_since{0};
  unsigned _challenges = 0;

  // Counts.
  std::uint64_t _bytes_sent = 0;
  std::uint64_t _bytes_acked = 0;
  std::uint64_t _bytes_received = 0;
  std::uint64_t _retransmits = 0;
};

}  // namespace reef::tcpip
