#include "tcpip/tcp_connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/assert.h"

namespace reef::tcpip {

namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t default_mss = 536;   // RFC 9293 3.7.1: without the option
constexpr std::uint16_t min_mss = 48;        // smaller ones are raised to it (Linux's floor)
constexpr std::size_t timestamps_size = 12;  // the option with its two NOPs
constexpr std::size_t small_segment = 512;   // payloads copied together rather than kept in their frames
constexpr std::size_t gather_size = 2048;
constexpr std::size_t held_overhead = 256;   // what an out-of-order segment costs beyond its bytes
constexpr std::size_t held_frame = 2048;     // what one kept in its received frame may pin
constexpr std::size_t held_max = 1024;       // out-of-order segments a connection holds at most
constexpr std::size_t scoreboard_max = 64;   // SACK blocks a sender keeps at most
constexpr tcp_time paws_idle = std::chrono::hours(24 * 24);  // RFC 7323 5.5: ts_recent too old to trust

std::error_code errc(int e) noexcept { return std::error_code(e, std::generic_category()); }

std::unique_ptr<congestion_control> make_congestion(tcp_congestion_algorithm a, std::uint32_t mss) {
  switch (a) {
    case tcp_congestion_algorithm::cubic:
      return make_cubic(mss);
    case tcp_congestion_algorithm::newreno:
      return make_newreno(mss);
  }
  return make_cubic(mss);
}

std::uint8_t shift_for(std::uint32_t buffer) noexcept {
  std::uint8_t s = 0;
  while (s < tcp_options::window_scale_max && (buffer >> s) > 65535) ++s;
  return s;
}

}  // namespace

const char* to_string(tcp_state s) noexcept {
  switch (s) {
    case tcp_state::closed: return "CLOSED";
    case tcp_state::syn_sent: return "SYN-SENT";
    case tcp_state::syn_received: return "SYN-RECEIVED";
    case tcp_state::established: return "ESTABLISHED";
    case tcp_state::fin_wait_1: return "FIN-WAIT-1";
    case tcp_state::fin_wait_2: return "FIN-WAIT-2";
    case tcp_state::close_wait: return "CLOSE-WAIT";
    case tcp_state::closing: return "CLOSING";
    case tcp_state::last_ack: return "LAST-ACK";
    case tcp_state::time_wait: return "TIME-WAIT";
  }
  return "?";
}

tcp_stats& tcp_stats::operator+=(const tcp_stats& o) noexcept {
  static_assert(sizeof(tcp_stats) == 21 * sizeof(std::uint64_t), "add the new count here");
  segments_received += o.segments_received;
  segments_sent += o.segments_sent;
  retransmitted += o.retransmitted;
  timeouts += o.timeouts;
  fast_retransmits += o.fast_retransmits;
  resets_received += o.resets_received;
  resets_sent += o.resets_sent;
  challenge_acks += o.challenge_acks;
  out_of_window += o.out_of_window;
  paws_rejected += o.paws_rejected;
  bad_acks += o.bad_acks;
  syn_fin_dropped += o.syn_fin_dropped;
  out_of_order += o.out_of_order;
  out_of_order_dropped += o.out_of_order_dropped;
  dsacks_sent += o.dsacks_sent;
  dsacks_received += o.dsacks_received;
  window_probes += o.window_probes;
  keepalive_probes += o.keepalive_probes;
  connections_timed_out += o.connections_timed_out;
  lost_retransmits += o.lost_retransmits;
  tail_loss_probes += o.tail_loss_probes;
  return *this;
}

tcp_connection::tcp_connection(const tcp_config& config, const tcp_tuple& tuple, tcp_seq isn,
                               transmit_function transmit, tcp_stats& stats)
    : _config(config),
      _tuple(tuple),
      _transmit(std::move(transmit)),
      _stats(stats),
      _iss(isn),
      _snd_una(isn),
      _snd_nxt(isn),
      _snd_max(isn),
      _send_base(isn + 1),
      _rtt(config.rtt),
      _recover(isn),
      _high_rxt(isn),
      _rcv_space(std::min(config.initial_receive_window, config.receive_buffer)) {
  _rcv_wscale = _config.window_scaling ? shift_for(_config.receive_buffer) : 0;
  _rcv_mss = _config.mss;
}

tcp_connection::~tcp_connection() = default;

// --- Opening. -------------------------------------------------------------------

void tcp_connection::connect(tcp_time now) {
  REEF_ASSERT(_state == tcp_state::closed && !_opened, "connect() on a connection already used");
  _opened = true;
  become(tcp_state::syn_sent);
  send_first_syn(now);
  notify();
}

void tcp_connection::send_first_syn(tcp_time now) {
  send_syn(now);
  _snd_nxt = _snd_max = _iss + 1;
  _rtt_timing = true;  // (the handshake's round trip, if it is not sent again)
  _rtt_seq = _iss;
  _rtt_sent_at = now;
  arm_rto(now);
}

void tcp_connection::accept(const tcp_header& syn, tcp_time now) {
  REEF_ASSERT(_state == tcp_state::closed && !_opened, "accept() on a connection already used");
  _opened = true;
  _passive = true;
  take_syn(syn, now);
  _last_ack_sent = _rcv_nxt;
  _snd_wl2 = _iss;
  become(tcp_state::syn_received);
  send_first_syn(now);
  notify();
}

void tcp_connection::accept_cookie(const tcp_header& ack, packet&& payload, const cookie_options& options,
                                   tcp_time now) {
  REEF_ASSERT(_state == tcp_state::closed && !_opened, "accept_cookie() on a connection already used");
  _opened = true;
  _passive = true;
  // The cookie was our ISN: the ACK acknowledges it, and the peer's first
  // byte is where the ACK's sequence number is.
  _irs = tcp_seq(ack.seq) - 1;
  _rcv_nxt = _last_ack_sent = tcp_seq(ack.seq);
  // The window the cookie's SYN-ACK offered (never scaled in a SYN).
  _rcv_adv = _rcv_nxt + std::min<std::uint32_t>({_config.initial_receive_window, _config.receive_buffer, 65535});
  tcp_options peer;
  peer.mss = options.mss;
  peer.window_scale = options.window_scale;
  peer.sack_permitted = options.sack;
  if (options.timestamps && ack.options.timestamps) peer.timestamps = ack.options.timestamps;
  take_options(peer);
  if (_ts_ok) {
    _ts_recent = (*ack.options.timestamps)[0];
    _ts_recent_at = now;
  }
  _snd_una = _snd_nxt = _snd_max = _iss + 1;
  _snd_wnd = _max_snd_wnd = std::uint32_t{ack.window} << _snd_wscale;
  _snd_wl1 = tcp_seq(ack.seq);
  _snd_wl2 = tcp_seq(ack.ack);
  _last_received = now;
  enter_established(now);
  if (payload.len() > 0 || ack.has(tcp_flags::fin)) process_data(ack, std::move(payload), now);
  output(now);
  notify();
}

void tcp_connection::take_syn(const tcp_header& syn, tcp_time now) {
  _irs = tcp_seq(syn.seq);
  _rcv_nxt = _rcv_adv = _irs + 1;
  take_options(syn.options);
  if (_ts_ok) {
    _ts_recent = (*syn.options.timestamps)[0];
    _ts_recent_at = now;
  }
  _snd_wnd = _max_snd_wnd = syn.window;  // (never scaled in a SYN)
  _snd_wl1 = _irs;
  _last_received = now;
}

void tcp_connection::take_options(const tcp_options& peer) {
  _peer_mss = std::max<std::uint16_t>(peer.mss.value_or(default_mss), min_mss);
  _wscale_ok = _config.window_scaling && peer.window_scale.has_value();
  if (_wscale_ok) {
    _snd_wscale = *peer.window_scale;
  } else {
    _snd_wscale = 0;
    _rcv_wscale = 0;
  }
  _sack_ok = _config.sack && peer.sack_permitted;
  _ts_ok = _config.timestamps && peer.timestamps.has_value();
  const std::uint32_t overhead = _ts_ok ? timestamps_size : 0;
  const std::uint32_t mss = std::min<std::uint32_t>(_peer_mss, _config.mss);
  _snd_mss = std::max<std::uint32_t>(mss > overhead ? mss - overhead : mss, 1);
  _rcv_mss = std::max<std::uint32_t>(_config.mss > overhead ? _config.mss - overhead : _config.mss, 1);
}

void tcp_connection::enter_established(tcp_time now) {
  _was_established = true;
  _cc = make_congestion(_config.congestion, _snd_mss);
  if (_retries > 0) _cc->on_handshake_retransmitted();
  _retries = 0;
  _recover = _snd_una;
  _high_rxt = _snd_una;
  _round_started = now;
  if (_fin_queued) {
    become(tcp_state::fin_wait_1);
  } else {
    become(tcp_state::established);
  }
  if (_config.keepalive) _keepalive_at = now + _config.keepalive_params.idle;
}

// --- Input. ---------------------------------------------------------------------

void tcp_connection::receive(const tcp_header& h, packet&& payload, tcp_time now) {
  ++_stats.segments_received;
  if (_state == tcp_state::closed) return;
  if (h.has(tcp_flags::syn) && h.has(tcp_flags::fin)) {
    ++_stats.syn_fin_dropped;
    return;
  }
  if (_state == tcp_state::syn_sent) {
    receive_in_syn_sent(h, now);
    notify();
    return;
  }
  const std::size_t length = payload.len();
  // The peer sent its SYN again: our SYN-ACK was lost.
  if (_state == tcp_state::syn_received && h.has(tcp_flags::syn) && !h.has(tcp_flags::ack) &&
      tcp_seq(h.seq) == _irs) {
    send_syn(now);
    notify();
    return;
  }
  // PAWS (RFC 7323 5.3): a segment whose timestamp is older than the last
  // one taken is a duplicate from long ago.
  if (_ts_ok && h.options.timestamps && !h.has(tcp_flags::rst)) {
    const std::uint32_t tsval = (*h.options.timestamps)[0];
    if (static_cast<std::int32_t>(tsval - _ts_recent) < 0 && now - _ts_recent_at < paws_idle) {
      ++_stats.paws_rejected;
      send_ack(now);
      notify();
      return;
    }
  }
  if (!check_sequence(h, length, now)) {
    notify();
    return;
  }
  _last_received = now;
  _keepalives_sent = 0;
  if (_config.keepalive && _keepalive_at != tcp_time_never) _keepalive_at = now + _config.keepalive_params.idle;

  if (h.has(tcp_flags::rst)) {
    // RFC 5961 3.2: only a reset exactly at the next expected byte is
    // taken; one elsewhere in the window gets a challenge ACK, which a
    // real peer answers with a reset that is exact.
    if (tcp_seq(h.seq) != _rcv_nxt) {
      send_challenge_ack(now);
      notify();
      return;
    }
    ++_stats.resets_received;
    if (_state == tcp_state::time_wait) {
      notify();  // RFC 1337: a reset does not cut TIME-WAIT short
      return;
    }
    if (_state == tcp_state::syn_received && _passive) {
      clear_timers();
      become(tcp_state::closed);  // back to the listener, which never saw it
      _error = errc(ECONNRESET);
    } else {
      fail(errc(_state == tcp_state::syn_received ? ECONNREFUSED : ECONNRESET), now);
    }
    notify();
    return;
  }
  if (h.has(tcp_flags::syn)) {
    // RFC 5961 4: a SYN on a synchronized connection is answered with a
    // challenge ACK, never a reset.
    send_challenge_ack(now);
    notify();
    return;
  }
  if (!h.has(tcp_flags::ack)) {
    notify();
    return;
  }
  if (!process_ack(h, length, now)) {
    notify();
    return;
  }
  // (After the ACK checks, RFC 5961 5: a blind segment with an
  // unacceptable ACK must not move ts_recent, or PAWS would then refuse
  // the real ones.)
  update_ts_recent(h, now);
  if (length > 0 || h.has(tcp_flags::fin)) process_data(h, std::move(payload), now);
  output(now);
  notify();
}

void tcp_connection::receive_in_syn_sent(const tcp_header& h, tcp_time now) {
  const tcp_seq ack(h.ack);
  if (h.has(tcp_flags::ack) && (ack <= _iss || ack > _snd_max)) {
    if (!h.has(tcp_flags::rst)) {
      tcp_header r;
      r.seq = h.ack;
      r.flags = tcp_flags::rst;
      ++_stats.resets_sent;
      emit(r, packet(), now);
    }
    return;
  }
  if (h.has(tcp_flags::rst)) {
    if (h.has(tcp_flags::ack)) {
      ++_stats.resets_received;
      fail(errc(ECONNREFUSED), now);
    }
    return;
  }
  if (!h.has(tcp_flags::syn)) return;
  take_syn(h, now);
  _last_ack_sent = _irs;  // (not yet acknowledged)
  if (!h.has(tcp_flags::ack)) {
    // Simultaneous open: both sent SYNs.
    _snd_wl2 = _iss;
    become(tcp_state::syn_received);
    send_syn(now);
    return;
  }
  _snd_wl2 = ack;
  _snd_una = ack;
  _rto_at = tcp_time_never;  // (the SYN was all there was in flight)
  if (_rtt_timing && _retries == 0) _rtt.sample(std::chrono::duration_cast<std::chrono::microseconds>(now - _rtt_sent_at));
  _rtt_timing = false;
  enter_established(now);
  output(now);
  if (_last_ack_sent != _rcv_nxt) send_ack(now);
}

bool tcp_connection::check_sequence(const tcp_header& h, std::size_t length, tcp_time now) {
  const tcp_seq seq(h.seq);
  const std::uint32_t segment_length = static_cast<std::uint32_t>(length) + (h.has(tcp_flags::syn) ? 1 : 0) +
                                       (h.has(tcp_flags::fin) ? 1 : 0);
  const std::int32_t offered = _rcv_adv - _rcv_nxt;
  const std::uint32_t window = offered > 0 ? static_cast<std::uint32_t>(offered) : 0;
  bool ok;
  if (segment_length == 0) {
    ok = window == 0 ? seq == _rcv_nxt : (seq >= _rcv_nxt && seq < _rcv_nxt + window);
  } else if (window == 0) {
    // A closed window takes no data, but the segment's ACK (and RST)
    // still count (RFC 9293 3.10.7.4): the data is cut off later.
    ok = seq == _rcv_nxt;
  } else {
    const tcp_seq last = seq + (segment_length - 1);
    ok = (seq >= _rcv_nxt && seq < _rcv_nxt + window) || (last >= _rcv_nxt && last < _rcv_nxt + window);
  }
  if (ok) return true;
  ++_stats.out_of_window;
  if (h.has(tcp_flags::rst)) return false;
  if (segment_length > 0 && seq + segment_length <= _rcv_nxt) {
    // All of it old: a retransmission of what we have. Say so at once
    // (with D-SACK), and in TIME-WAIT a FIN again restarts the wait.
    if (length > 0 && _sack_ok) _dsack = tcp_sack_block{h.seq, h.seq + static_cast<std::uint32_t>(length)};
    if (_state == tcp_state::time_wait && h.has(tcp_flags::fin)) _time_wait_at = now + _config.time_wait;
    send_ack(now);
    return false;
  }
  send_challenge_ack(now);
  return false;
}

void tcp_connection::update_ts_recent(const tcp_header& h, tcp_time now) {
  if (!_ts_ok || !h.options.timestamps) return;
  const std::uint32_t tsval = (*h.options.timestamps)[0];
  // RFC 7323 4.3: taken from a segment that our last ACK covered.
  if (static_cast<std::int32_t>(tsval - _ts_recent) >= 0 && tcp_seq(h.seq) <= _last_ack_sent) {
    _ts_recent = tsval;
    _ts_recent_at = now;
  }
}

bool tcp_connection::process_ack(const tcp_header& h, std::size_t length, tcp_time now) {
  tcp_seq ack(h.ack);
  if (_state == tcp_state::syn_received) {
    if (!(ack > _snd_una && ack <= _snd_max)) {
      tcp_header r;
      r.seq = h.ack;
      r.flags = tcp_flags::rst;
      ++_stats.resets_sent;
      emit(r, packet(), now);
      return false;
    }
    _snd_una = ack;
    _send_base = _iss + 1;
    _rto_at = tcp_time_never;  // (the SYN-ACK was all there was in flight)
    if (_rtt_timing && _retries == 0) _rtt.sample(now - _rtt_sent_at);
    _rtt_timing = false;
    _snd_wnd = std::uint32_t{h.window} << _snd_wscale;
    _max_snd_wnd = std::max(_max_snd_wnd, _snd_wnd);
    _snd_wl1 = tcp_seq(h.seq);
    _snd_wl2 = ack;
    enter_established(now);
  }
  // RFC 5961 5.2: an ACK of data never sent, or of data older than a
  // window, is dropped and answered with a challenge ACK.
  if (ack > _snd_max) {
    ++_stats.bad_acks;
    send_challenge_ack(now);
    return false;
  }
  if (ack < _snd_una - std::max<std::uint32_t>(_max_snd_wnd, 1)) {
    ++_stats.bad_acks;
    send_challenge_ack(now);
    return false;
  }
  const std::uint32_t window = std::uint32_t{h.window} << _snd_wscale;
  if (_sack_ok && h.options.sack_count > 0) process_sack(h);

  if (ack > _snd_una) {
    const std::uint32_t acked = ack - _snd_una;
    std::uint32_t data_acked = 0;
    if (ack > _send_base) {
      const tcp_seq data_acked_to = std::min(ack, data_end());
      data_acked = data_acked_to > _send_base ? static_cast<std::uint32_t>(data_acked_to - _send_base) : 0;
    }
    std::uint32_t left = data_acked;
    while (left > 0) {
      packet& front = _send_queue.front();
      if (front.len() <= left) {
        left -= static_cast<std::uint32_t>(front.len());
        _send_queue.pop_front();
      } else {
        front.trim_front(left);
        left = 0;
      }
    }
    _send_base += data_acked;
    _send_bytes -= data_acked;
    _bytes_acked += data_acked;
    _snd_una = ack;
    if (_snd_nxt < _snd_una) _snd_nxt = _snd_una;
    // Round trip: from the echoed timestamp (any segment, RFC 7323 4.1),
    // else from the one segment timed (Karn: never a retransmitted one).
    if (_ts_ok && h.options.timestamps && (*h.options.timestamps)[1] != 0) {
      const std::uint32_t echoed_ms = ts_value(now) - (*h.options.timestamps)[1];
      if (echoed_ms < (1u << 31)) _rtt.sample(std::chrono::milliseconds(echoed_ms));
    } else if (_rtt_timing && ack > _rtt_seq) {
      _rtt.sample(now - _rtt_sent_at);
      _rtt_timing = false;
    }
    _retries = 0;
    _probes = 0;
    while (!_scoreboard.empty() && tcp_seq(_scoreboard.front().right) <= _snd_una) {
      _scoreboard.erase(_scoreboard.begin());
    }
    if (!_scoreboard.empty() && tcp_seq(_scoreboard.front().left) < _snd_una) _scoreboard.front().left = _snd_una.raw();
    if (_high_rxt < _snd_una) _high_rxt = _snd_una;
    if (_in_recovery) {
      if (_snd_una >= _recover) {
        _in_recovery = false;
        _pass_marked = false;
        _inflation = 0;
        _dupacks = 0;
        _cc->on_recovered();
      } else if (!_sack_ok) {
        // A partial ACK (RFC 6582 3.2 (5)): the next hole is lost too.
        _inflation = _inflation > acked ? _inflation - acked : 0;
        if (acked >= _snd_mss) _inflation += _snd_mss;
        send_range(_snd_una, current_mss(), now);
      }
    } else {
      _dupacks = 0;
      _inflation = 0;
      if (_cc) _cc->on_ack(data_acked, now, _rtt.srtt());
    }
    _probe_out = false;
    if (_snd_una == _snd_max) {
      _rto_at = tcp_time_never;
      _probe_at = tcp_time_never;
    } else {
      arm_rto(now);
      arm_probe(now);
    }
    changed();
  } else if (ack == _snd_una && length == 0 && !h.has(tcp_flags::fin) && window == _snd_wnd &&
             _snd_max > _snd_una) {
    ++_dupacks;
    if (_in_recovery) {
      if (!_sack_ok) _inflation += _snd_mss;
    } else if (_dupacks >= 3 && _snd_una >= _recover) {
      enter_recovery(now);
    } else if (!_sack_ok && _dupacks < 3) {
      _inflation = _dupacks * _snd_mss;  // limited transmit (RFC 3042)
    }
  }
  if (!_in_recovery && _sack_ok && _snd_una >= _recover && sack_says_lost()) enter_recovery(now);
  if (_in_recovery && _sack_ok) check_lost_retransmission();

  // The send window (RFC 9293 3.10.7.4): from the newest segment.
  const tcp_seq seq(h.seq);
  if (_snd_wl1 < seq || (_snd_wl1 == seq && _snd_wl2 <= ack)) {
    const bool opened = _snd_wnd == 0 && window > 0;
    _snd_wnd = window;
    _max_snd_wnd = std::max(_max_snd_wnd, window);
    _snd_wl1 = seq;
    _snd_wl2 = ack;
    if (opened) {
      _persist_at = tcp_time_never;
      _persist_backoff = 0;
      changed();
    }
  }
  _probes = 0;  // (an acceptable ACK: the peer is there)

  if (fin_acked()) {
    switch (_state) {
      case tcp_state::fin_wait_1:
        become(tcp_state::fin_wait_2);
        if (_released) _fin_wait_2_at = now + _config.fin_wait_2;
        break;
      case tcp_state::closing:
        enter_time_wait(now);
        break;
      case tcp_state::last_ack:
        become(tcp_state::closed);
        clear_timers();
        return false;
      default:
        break;
    }
  }
  return true;
}

void tcp_connection::process_sack(const tcp_header& h) {
  for (std::size_t i = 0; i < h.options.sack_count; ++i) {
    tcp_seq left(h.options.sack[i].left);
    tcp_seq right(h.options.sack[i].right);
    // D-SACK (RFC 2883): the first block below the cumulative ACK, or
    // inside the second block, reports a duplicate, not a hole filled.
    if (i == 0 && (right <= tcp_seq(h.ack) ||
                   (h.options.sack_count > 1 && left >= tcp_seq(h.options.sack[1].left) &&
                    right <= tcp_seq(h.options.sack[1].right)))) {
      ++_stats.dsacks_received;
      continue;
    }
    if (!(left < right) || right > _snd_max) continue;  // nonsense: ignored
    if (left < _snd_una) left = _snd_una;
    if (!(left < right)) continue;
    // Merge [left, right) into the scoreboard (of bounded size: a peer
    // SACKing every other byte gets no more work from us than this).
    tcp_sack_block block{left.raw(), right.raw()};
    auto it = _scoreboard.begin();
    while (it != _scoreboard.end() && tcp_seq(it->right) < left) ++it;
    while (it != _scoreboard.end() && tcp_seq(it->left) <= tcp_seq(block.right)) {
      if (tcp_seq(it->left) < tcp_seq(block.left)) block.left = it->left;
      if (tcp_seq(it->right) > tcp_seq(block.right)) block.right = it->right;
      it = _scoreboard.erase(it);
    }
    if (_scoreboard.size() >= scoreboard_max) continue;  // (what merged in is gone: taken as unSACKed)
    _scoreboard.insert(it, block);
  }
}

void tcp_connection::process_data(const tcp_header& h, packet&& payload, tcp_time now) {
  bool fin = h.has(tcp_flags::fin);
  tcp_seq seq(h.seq);
  if (_state != tcp_state::established && _state != tcp_state::fin_wait_1 && _state != tcp_state::fin_wait_2) {
    // The peer has sent its FIN already: whatever comes is old.
    send_ack(now);
    return;
  }
  if (_released && payload.len() > 0) {
    // Nobody will read it: tell the peer at once (as Linux does).
    send_reset(now);
    fail(errc(ECONNRESET), now);
    return;
  }
  if (seq < _rcv_nxt) {
    const std::uint32_t old = _rcv_nxt - seq;
    if (old >= payload.len()) {
      const std::size_t length = payload.len();
      if (length > 0 && _sack_ok) _dsack = tcp_sack_block{seq.raw(), (seq + length).raw()};
      payload = packet();
      if (!fin || old != length) {  // (the FIN, at seq + length, is new only if that is RCV.NXT)
        send_ack(now);
        return;
      }
    } else {
      if (_sack_ok) _dsack = tcp_sack_block{seq.raw(), _rcv_nxt.raw()};
      payload.trim_front(old);
    }
    seq = _rcv_nxt;
  }
  // Only what fits in the window we offered is taken.
  const std::int32_t room = _rcv_adv - seq;
  const std::size_t fits = room > 0 ? static_cast<std::size_t>(room) : 0;
  if (payload.len() > fits) {
    payload.trim_back_to(fits);
    fin = false;
  }
  if (payload.len() == 0 && !fin) {
    send_ack(now);
    return;
  }
  if (seq != _rcv_nxt) {
    hold_out_of_order(seq, std::move(payload), fin);
    send_ack(now);  // a duplicate ACK, with SACK: the sender learns of the hole
    changed();
    return;
  }
  const bool filled_a_hole = !_out_of_order.empty();
  const std::size_t length = payload.len();
  if (length > 0) {
    // (Up to our MSS: a device that merges segments (LRO) delivers
    // longer ones, which say nothing of the peer's.)
    _rcv_mss = std::max<std::uint32_t>(_rcv_mss, std::min<std::size_t>(length, _config.mss));
    deliver(std::move(payload));
    _rcv_nxt += static_cast<std::uint32_t>(length);
  }
  if (fin) {
    process_fin(now);
    return;
  }
  pull_out_of_order(now);
  if (_fin_received) return;  // (pull_out_of_order took a FIN and said so)
  changed();
  _unacked_bytes += static_cast<std::uint32_t>(length);
  if (filled_a_hole || _unacked_bytes >= 2 * _rcv_mss || _config.delayed_ack.count() == 0) {
    send_ack(now);
  } else if (_delack_at == tcp_time_never) {
    _delack_at = now + _config.delayed_ack;
  }
}

void tcp_connection::deliver(packet&& data) {
  // (Counted only once queued: an allocation that fails leaves nothing
  // half done, and the caller aborts the connection.)
  const std::size_t n = data.len();
  if (_input_shut) {
    _bytes_received += n;
    return;  // discarded, as shutdown_input() said
  }
  if (n >= small_segment) {
    _back_is_gather = false;
    _readable.push_back(std::move(data).linearize());
  } else {
    // Small payloads are copied together, so that a peer sending a byte
    // a segment cannot make each byte hold a whole frame.
    if (!_back_is_gather || _gather_used + n > _gather.size()) {
      _back_is_gather = false;
      temporary_buffer<char> fresh(gather_size);
      _readable.push_back(fresh.share(0, 0));
      _gather = std::move(fresh);
      _gather_used = 0;
      _back_is_gather = true;
    }
    char* to = _gather.get_write() + _gather_used;
    for (const fragment& f : data.fragments()) {
      std::memcpy(to, f.base, f.size);
      to += f.size;
    }
    temporary_buffer<char>& back = _readable.back();
    const std::size_t start = static_cast<std::size_t>(back.get() - _gather.get());
    _gather_used += n;
    back = _gather.share(start, _gather_used - start);
  }
  _readable_bytes += n;
  _bytes_received += n;
}

void tcp_connection::hold_out_of_order(tcp_seq seq, packet&& data, bool fin) {
  tcp_seq end = seq + static_cast<std::uint32_t>(data.len());
  // Already held in full: a duplicate.
  for (const held_segment& s : _out_of_order) {
    const tcp_seq s_end = s.seq + static_cast<std::uint32_t>(s.data.len());
    if (s.seq <= seq && end <= s_end && (!fin || s.fin)) {
      if (_sack_ok && data.len() > 0) _dsack = tcp_sack_block{seq.raw(), end.raw()};
      return;
    }
  }
  // Held segments inside this one go; this one is cut to what its
  // neighbours do not hold.
  for (auto it = _out_of_order.begin(); it != _out_of_order.end();) {
    const tcp_seq s_end = it->seq + static_cast<std::uint32_t>(it->data.len());
    if (it->seq >= seq && s_end <= end && !(it->fin && s_end == end && !fin)) {
      _out_of_order_cost -= it->cost;
      it = _out_of_order.erase(it);
    } else {
      ++it;
    }
  }
  auto it = _out_of_order.begin();
  while (it != _out_of_order.end() && it->seq < seq) ++it;
  if (it != _out_of_order.begin()) {
    const held_segment& before = *(it - 1);
    const tcp_seq before_end = before.seq + static_cast<std::uint32_t>(before.data.len());
    if (before_end > seq) {
      const std::uint32_t cut = before_end - seq;
      if (cut >= data.len()) {
        if (!fin || before_end != end) return;
        data = packet();  // only the FIN is news
        seq = end;
      } else {
        data.trim_front(cut);
        seq = before_end;
      }
    }
  }
  if (it != _out_of_order.end() && it->seq < end) {
    data.trim_back_to(it->seq - seq);
    end = it->seq;
    fin = false;
  }
  if (data.len() == 0 && !fin) return;
  // What it costs: a small payload is copied out of its frame; a larger
  // one keeps the frame, which may be a couple of KiB whatever it holds.
  const bool copy = data.len() < small_segment;
  const std::size_t cost = copy ? data.len() + held_overhead : std::max(data.len() + held_overhead, held_frame);
  if (_out_of_order.size() >= held_max || _out_of_order_cost + cost > _config.receive_buffer) {
    ++_stats.out_of_order_dropped;  // the sender will send it again
    return;
  }
  if (copy && data.len() > 0) data = packet(std::move(data).linearize().clone());
  _out_of_order.insert(it, held_segment{seq, std::move(data), fin, cost});  // (may throw: counted after)
  ++_stats.out_of_order;
  _out_of_order_cost += cost;
  // The block holding what came last goes first in the SACK option
  // (RFC 2018 4).
  std::erase(_recent_held, seq);
  _recent_held.insert(_recent_held.begin(), seq);
  if (_recent_held.size() > tcp_options::sack_blocks_max) _recent_held.pop_back();
}

void tcp_connection::pull_out_of_order(tcp_time now) {
  // What the hole's filling made contiguous, delivered, then erased in
  // one go.
  std::size_t taken = 0;
  bool fin = false;
  for (; taken < _out_of_order.size() && _out_of_order[taken].seq <= _rcv_nxt; ++taken) {
    held_segment& s = _out_of_order[taken];
    _out_of_order_cost -= s.cost;
    const tcp_seq end = s.seq + static_cast<std::uint32_t>(s.data.len());
    if (end < _rcv_nxt || (end == _rcv_nxt && !s.fin)) continue;
    s.data.trim_front(_rcv_nxt - s.seq);
    const std::size_t length = s.data.len();
    if (length > 0) {
      deliver(std::move(s.data));
      _rcv_nxt += static_cast<std::uint32_t>(length);
    }
    if (s.fin) {
      fin = true;
      ++taken;
      break;
    }
  }
  _out_of_order.erase(_out_of_order.begin(), _out_of_order.begin() + static_cast<std::ptrdiff_t>(taken));
  if (fin) process_fin(now);
}

void tcp_connection::process_fin(tcp_time now) {
  _rcv_nxt += 1;
  _fin_received = true;
  // What is held past the FIN was never sent: forget it.
  _out_of_order.clear();
  _out_of_order_cost = 0;
  switch (_state) {
    case tcp_state::established:
      become(tcp_state::close_wait);
      break;
    case tcp_state::fin_wait_1:
      if (fin_acked()) {
        enter_time_wait(now);
      } else {
        become(tcp_state::closing);
      }
      break;
    case tcp_state::fin_wait_2:
      enter_time_wait(now);
      break;
    default:
      break;
  }
  changed();
  send_ack(now);
}

// --- The application's side. ----------------------------------------------------

void tcp_connection::send(packet&& data, tcp_time now) {
  REEF_ASSERT(can_send(), "send() on a connection shut down for output");
  if (data.len() == 0) return;
  const std::size_t n = data.len();
  _send_queue.push_back(std::move(data));  // (may throw: nothing counted yet)
  _send_bytes += n;
  output(now);
  notify();
}

bool tcp_connection::can_send() const noexcept {
  if (_fin_queued || _error) return false;
  switch (_state) {
    case tcp_state::syn_sent:
    case tcp_state::syn_received:
    case tcp_state::established:
    case tcp_state::close_wait:
      return true;
    default:
      return false;
  }
}

std::size_t tcp_connection::send_space() const noexcept {
  return _config.send_buffer > _send_bytes ? _config.send_buffer - _send_bytes : 0;
}

temporary_buffer<char> tcp_connection::read(tcp_time now) {
  if (_readable.empty()) return {};
  if (_readable.size() == 1) _back_is_gather = false;  // the gather buffer's entry leaves
  temporary_buffer<char> b = std::move(_readable.front());
  _readable.pop_front();
  _readable_bytes -= b.size();
  // Autotuning: a reader that takes a whole window within a few round
  // trips is kept up with by a larger one.
  _read_in_round += b.size();
  if (_read_in_round >= _rcv_space) {
    const tcp_time round = std::max<tcp_time>(_rtt.has_sample() ? _rtt.srtt() : tcp_time(100'000), 1ms);
    if (now - _round_started <= 4 * round && _rcv_space < _config.receive_buffer) {
      _rcv_space = static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{_rcv_space} * 2,
                                                                      _config.receive_buffer));
    }
    _read_in_round = 0;
    _round_started = now;
  }
  maybe_send_window_update(now);
  notify();
  return b;
}

void tcp_connection::shutdown_output(tcp_time now) {
  if (_fin_queued) return;
  switch (_state) {
    case tcp_state::closed:
    case tcp_state::syn_sent:
      if (!_was_established) {
        // Never connected: nothing to say to anyone.
        if (_state == tcp_state::syn_sent) {
          clear_timers();
          become(tcp_state::closed);
        }
        _fin_queued = true;
        notify();
        return;
      }
      return;
    case tcp_state::syn_received:
      _fin_queued = true;  // FIN-WAIT-1 once established
      break;
    case tcp_state::established:
      _fin_queued = true;
      become(tcp_state::fin_wait_1);
      break;
    case tcp_state::close_wait:
      _fin_queued = true;
      become(tcp_state::last_ack);
      break;
    default:
      return;
  }
  output(now);
  notify();
}

void tcp_connection::shutdown_input(tcp_time now) {
  if (_input_shut) return;
  _input_shut = true;
  _readable.clear();
  _readable_bytes = 0;
  _back_is_gather = false;
  _gather = temporary_buffer<char>();
  changed();
  maybe_send_window_update(now);
  notify();
}

void tcp_connection::release(tcp_time now) {
  if (_released) return;
  _released = true;
  _on_change = nullptr;
  if (_state == tcp_state::closed || _state == tcp_state::syn_sent) {
    clear_timers();
    become(tcp_state::closed);
    return;
  }
  if (_readable_bytes > 0 || !_out_of_order.empty()) {
    // Unread bytes: the peer must not think they were taken.
    abort(now);
    return;
  }
  shutdown_output(now);
  if (_state == tcp_state::fin_wait_2) _fin_wait_2_at = now + _config.fin_wait_2;
}

void tcp_connection::abort(tcp_time now) {
  switch (_state) {
    case tcp_state::syn_received:
    case tcp_state::established:
    case tcp_state::fin_wait_1:
    case tcp_state::fin_wait_2:
    case tcp_state::close_wait:
      send_reset(now);
      break;
    default:
      break;
  }
  fail(errc(ECONNABORTED), now);
  notify();
}

void tcp_connection::set_no_delay(bool on, tcp_time now) {
  _config.no_delay = on;
  if (on) output(now);
  notify();
}

void tcp_connection::set_keepalive(bool on, tcp_time now) {
  _config.keepalive = on;
  _keepalives_sent = 0;
  const bool running = _state == tcp_state::established || _state == tcp_state::close_wait ||
                       _state == tcp_state::fin_wait_1 || _state == tcp_state::fin_wait_2;
  _keepalive_at = on && running ? now + _config.keepalive_params.idle : tcp_time_never;
}

void tcp_connection::set_keepalive_params(const tcp_keepalive_params& p, tcp_time now) {
  _config.keepalive_params = p;
  if (_config.keepalive) set_keepalive(true, now);
}

void tcp_connection::set_send_buffer(std::uint32_t bytes, tcp_time) {
  _config.send_buffer = std::max<std::uint32_t>(bytes, 4096);
  changed();
  notify();
}

void tcp_connection::set_receive_buffer(std::uint32_t bytes) {
  _config.receive_buffer = std::max<std::uint32_t>(bytes, 4096);
  if (!_opened) _rcv_wscale = _config.window_scaling ? shift_for(_config.receive_buffer) : 0;
  _rcv_space = std::min(_rcv_space, _config.receive_buffer);
}

bool tcp_connection::accepts_new_syn(const tcp_header& syn) const noexcept {
  if (_state != tcp_state::time_wait) return false;
  if (_ts_ok && syn.options.timestamps) {
    return static_cast<std::int32_t>((*syn.options.timestamps)[0] - _ts_recent) > 0;
  }
  return tcp_seq(syn.seq) > _rcv_nxt;
}

tcp_info tcp_connection::info() const noexcept {
  tcp_info i;
  i.state = _state;
  i.rtt = _rtt.srtt();
  i.rttvar = _rtt.rttvar();
  i.rto = _rtt.rto();
  i.cwnd = _cc ? _cc->cwnd() : 0;
  i.ssthresh = _cc ? _cc->ssthresh() : 0;
  i.snd_mss = _snd_mss;
  i.snd_wnd = _snd_wnd;
  const std::int32_t offered = _rcv_adv - _rcv_nxt;
  i.rcv_wnd = offered > 0 ? static_cast<std::uint32_t>(offered) : 0;
  i.snd_wscale = _snd_wscale;
  i.rcv_wscale = _rcv_wscale;
  i.timestamps = _ts_ok;
  i.sack = _sack_ok;
  i.bytes_sent = _bytes_sent;
  i.bytes_acked = _bytes_acked;
  i.bytes_received = _bytes_received;
  i.retransmits = _retransmits;
  i.backoffs = _rtt.backoffs();
  i.unacked = static_cast<std::uint32_t>(_snd_max - _snd_una);
  return i;
}

// --- Output. --------------------------------------------------------------------

void tcp_connection::output(tcp_time now) {
  switch (_state) {
    case tcp_state::established:
    case tcp_state::close_wait:
    case tcp_state::fin_wait_1:
    case tcp_state::closing:
    case tcp_state::last_ack:
      break;
    default:
      return;
  }
  if (_in_recovery && _sack_ok) {
    // RFC 6675 5 (C): while the pipe has room, the holes first, then
    // new data.
    while (in_flight() < _cc->cwnd()) {
      if (retransmit_next_hole(now)) continue;
      if (!send_new_segment(now)) break;
    }
  } else {
    while (send_new_segment(now)) {
    }
  }
  // Data waiting with nothing in flight to bring the ACK that would let
  // it go: a closed window, or one too small to be worth a segment (SWS
  // avoidance). Only the window update says when to go on, and it may be
  // lost: the persist timer probes (and past a small window, sends what
  // fits: RFC 9293 3.8.6.2.1's override).
  const bool waiting = _snd_nxt < data_end() || (_fin_queued && !_fin_sent);
  if (waiting && _snd_una == _snd_max && _persist_at == tcp_time_never && _rto_at == tcp_time_never) {
    arm_persist(now);
  }
}

std::uint32_t tcp_connection::current_mss() const noexcept {
  // The SACK blocks emit() adds while data is held out of order (or a
  // D-SACK is due), at most as many as fit beside the timestamps: so
  // that a full segment, options and all, stays within the MTU (as
  // Linux's tcp_current_mss()).
  if (!_sack_ok || (!_dsack && _recent_held.empty())) return _snd_mss;
  const std::size_t fit = _ts_ok ? 3 : tcp_options::sack_blocks_max;
  const std::size_t blocks = std::min(fit, (_dsack ? 1 : 0) + _recent_held.size());
  const std::uint32_t bytes = static_cast<std::uint32_t>(4 + 8 * blocks);  // kind, length, blocks, two NOPs
  return _snd_mss > bytes ? _snd_mss - bytes : 1;
}

bool tcp_connection::send_new_segment(tcp_time now) {
  if (_snd_nxt >= data_end()) {
    // No bytes left: the FIN, once (again after a timeout's rewind).
    if (_fin_queued && (!_fin_sent || _snd_nxt == _fin_seq)) send_range(_snd_nxt, 0, now);
    return false;
  }
  const std::uint32_t available = data_end() - _snd_nxt;
  const std::int32_t by_window = (_snd_una + _snd_wnd) - _snd_nxt;
  const std::uint64_t budget = std::uint64_t{_cc->cwnd()} + _inflation;
  const std::uint32_t flight = in_flight();
  const std::uint64_t by_cwnd = budget > flight ? budget - flight : 0;
  const std::uint32_t mss = current_mss();
  const std::uint64_t most = std::max(mss, _config.tso_bytes);
  std::uint64_t length = std::min<std::uint64_t>({available, most, by_cwnd,
                                                  by_window > 0 ? static_cast<std::uint64_t>(by_window) : 0});
  if (length == 0) return false;
  const bool outstanding = _snd_max > _snd_una;
  const bool nagle = outstanding && !_config.no_delay && !_fin_queued;
  // TSO: whole segments, but for the end of the data (the pieces the
  // device cuts are then all full but the last); and Nagle's rule holds
  // for that last piece as it would for a segment of its own.
  if (length > mss && (length < available || nagle)) length -= length % mss;
  if (length < mss) {
    if (length < available) {
      // Window-limited: a small segment only if it is half the largest
      // window seen (RFC 9293 3.8.6.2.1, sender SWS avoidance).
      if (length < _max_snd_wnd / 2 || (outstanding && !_config.no_delay)) return false;
    } else if (nagle) {
      // Nagle: the rest is small; it waits for what is in flight.
      return false;
    }
  }
  send_range(_snd_nxt, static_cast<std::uint32_t>(length), now);
  return true;
}

void tcp_connection::send_range(tcp_seq seq, std::uint32_t max_length, tcp_time now) {
  const std::uint32_t offset = seq - _send_base;
  const std::uint32_t held = static_cast<std::uint32_t>(_send_bytes);
  const std::uint32_t length = offset >= held ? 0 : std::min(max_length, held - offset);
  packet payload;
  if (length > 0) {
    std::uint32_t skip = offset;
    std::uint32_t left = length;
    for (std::size_t i = 0; i < _send_queue.size() && left > 0; ++i) {
      packet& chunk = _send_queue[i];
      const std::uint32_t size = static_cast<std::uint32_t>(chunk.len());
      if (skip >= size) {
        skip -= size;
        continue;
      }
      const std::uint32_t take = std::min(size - skip, left);
      payload.append(chunk.share(skip, take));
      left -= take;
      skip = 0;
    }
  }
  const tcp_seq end_of_data = seq + length;
  bool fin = false;
  if (_fin_queued && end_of_data == data_end()) fin = !_fin_sent || end_of_data == _fin_seq;
  if (length == 0 && !fin) return;

  tcp_header h;
  h.seq = seq.raw();
  h.flags = tcp_flags::ack;
  if (length > 0 && end_of_data == data_end()) h.flags |= tcp_flags::psh;
  if (fin) h.flags |= tcp_flags::fin;
  const bool again = seq < _snd_max;
  if (again) {
    ++_stats.retransmitted;
    ++_retransmits;
    if (_rtt_timing && _rtt_seq >= seq && _rtt_seq < end_of_data + (fin ? 1 : 0)) _rtt_timing = false;
  } else {
    if (_snd_una == _snd_max && _cc && now - _last_sent_at > _rtt.rto()) _cc->on_idle_restart();
    _bytes_sent += length;
    if (!_ts_ok && !_rtt_timing) {
      _rtt_timing = true;
      _rtt_seq = seq;
      _rtt_sent_at = now;
    }
  }
  const tcp_seq end = end_of_data + (fin ? 1 : 0);
  if (seq == _snd_nxt || end > _snd_nxt) _snd_nxt = std::max(_snd_nxt, end);
  if (_snd_nxt > _snd_max) _snd_max = _snd_nxt;
  if (fin) {
    _fin_sent = true;
    _fin_seq = end_of_data;
  }
  _last_sent_at = now;
  if (_rto_at == tcp_time_never) arm_rto(now);
  if (!_probe_out) arm_probe(now);
  _persist_at = tcp_time_never;
  _segment_size = current_mss();  // (before emit() takes the D-SACK)
  emit(h, std::move(payload), now);
}

void tcp_connection::send_syn(tcp_time now) {
  tcp_header h;
  h.seq = _iss.raw();
  h.flags = tcp_flags::syn;
  const bool answering = _state == tcp_state::syn_received;
  if (answering) {
    h.flags |= tcp_flags::ack;
    h.ack = _rcv_nxt.raw();
    _last_ack_sent = _rcv_nxt;
  }
  h.options.mss = _config.mss;
  // A SYN offers every option we speak; a SYN-ACK answers with those the
  // SYN offered (take_options() left them on).
  if (answering ? _wscale_ok : _config.window_scaling) {
    h.options.window_scale = _rcv_wscale;
  }
  if (answering ? _sack_ok : _config.sack) h.options.sack_permitted = true;
  if (answering ? _ts_ok : _config.timestamps) h.options.timestamps = std::array<std::uint32_t, 2>{ts_value(now), _ts_recent};
  h.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(_rcv_space, 65535));  // never scaled
  if (answering) _rcv_adv = _rcv_nxt + h.window;
  h.source_port = _tuple.local_port;
  h.destination_port = _tuple.remote_port;
  ++_stats.segments_sent;
  _transmit(h, packet());
}

void tcp_connection::send_ack(tcp_time now) {
  // The highest sequence number sent, not SND.NXT: after a timeout's
  // rewind, SND.NXT may be behind what the peer has, and an ACK from
  // behind its window would be dropped there (both ends stall).
  tcp_header h;
  h.seq = _snd_max.raw();
  h.flags = tcp_flags::ack;
  emit(h, packet(), now);
}

void tcp_connection::send_challenge_ack(tcp_time now) {
  if (now - _challenge_since >= 1s) {
    _challenge_since = now;
    _challenges = 0;
  }
  if (_challenges >= _config.challenge_acks_per_second) return;
  ++_challenges;
  ++_stats.challenge_acks;
  send_ack(now);
}

void tcp_connection::send_probe(tcp_time now) {
  // An old sequence number: the peer answers with an ACK saying where it
  // is and what window it has, and takes nothing.
  tcp_header h;
  h.seq = (_snd_una - 1).raw();
  h.flags = tcp_flags::ack;
  emit(h, packet(), now);
}

void tcp_connection::send_reset(tcp_time now) {
  tcp_header h;
  h.seq = _snd_max.raw();  // (see send_ack)
  h.flags = tcp_flags::rst | tcp_flags::ack;
  ++_stats.resets_sent;
  emit(h, packet(), now);
}

void tcp_connection::emit(tcp_header& h, packet&& payload, tcp_time now) {
  h.source_port = _tuple.local_port;
  h.destination_port = _tuple.remote_port;
  if (h.has(tcp_flags::ack)) {
    h.ack = _rcv_nxt.raw();
    h.window = static_cast<std::uint16_t>(window_to_offer());
    _last_ack_sent = _rcv_nxt;
    _delack_at = tcp_time_never;
    _unacked_bytes = 0;
    if (_ts_ok) h.options.timestamps = std::array<std::uint32_t, 2>{ts_value(now), _ts_recent};
    if (_sack_ok && !h.has(tcp_flags::rst)) {
      std::size_t n = 0;
      if (_dsack) {
        h.options.sack[n++] = *_dsack;
        _dsack.reset();
        ++_stats.dsacks_sent;
      }
      // The blocks held out of order, the most recent first.
      for (tcp_seq s : _recent_held) {
        if (n == tcp_options::sack_blocks_max) break;
        auto it = std::find_if(_out_of_order.begin(), _out_of_order.end(),
                               [&](const held_segment& held) { return held.seq == s; });
        if (it == _out_of_order.end()) continue;
        // The run of held segments around it, end to end.
        auto first = it;
        while (first != _out_of_order.begin()) {
          auto prev = first - 1;
          if (prev->seq + static_cast<std::uint32_t>(prev->data.len()) != first->seq) break;
          first = prev;
        }
        auto last = it;
        while (last + 1 != _out_of_order.end() &&
               last->seq + static_cast<std::uint32_t>(last->data.len()) == (last + 1)->seq) {
          ++last;
        }
        const tcp_sack_block block{first->seq.raw(),
                                   (last->seq + static_cast<std::uint32_t>(last->data.len()) +
                                    (last->fin ? 1 : 0)).raw()};
        bool repeated = false;
        for (std::size_t k = 0; k < n; ++k) repeated = repeated || h.options.sack[k] == block;
        if (!repeated) h.options.sack[n++] = block;
      }
      h.options.sack_count = n;
    }
  } else if (_ts_ok) {
    h.options.timestamps = std::array<std::uint32_t, 2>{ts_value(now), 0};
  }
  ++_stats.segments_sent;
  _transmit(h, std::move(payload));
}

std::uint32_t tcp_connection::window_to_offer() noexcept {
  std::uint32_t space = _input_shut ? _rcv_space : (_rcv_space > _readable_bytes ? _rcv_space - static_cast<std::uint32_t>(_readable_bytes) : 0);
  const std::int32_t offered_now = _rcv_adv - _rcv_nxt;
  const std::uint32_t offered = offered_now > 0 ? static_cast<std::uint32_t>(offered_now) : 0;
  // Never take back what was offered (RFC 9293 3.8.6.2.2); open further
  // only by a useful amount (receiver SWS avoidance).
  bool round_up = false;
  if (space <= offered) {
    space = offered;
    round_up = true;
  } else if (space - offered < std::min(_rcv_space / 2, _rcv_mss)) {
    space = offered;
    round_up = true;
  }
  const std::uint32_t unit = 1u << _rcv_wscale;
  std::uint32_t scaled = round_up ? (space + unit - 1) >> _rcv_wscale : space >> _rcv_wscale;
  scaled = std::min<std::uint32_t>(scaled, 65535);
  const tcp_seq edge = _rcv_nxt + (scaled << _rcv_wscale);
  if (edge > _rcv_adv) _rcv_adv = edge;
  return scaled;
}

void tcp_connection::maybe_send_window_update(tcp_time now) {
  if (_state != tcp_state::established && _state != tcp_state::fin_wait_1 && _state != tcp_state::fin_wait_2) return;
  const std::uint32_t space = _rcv_space > _readable_bytes ? _rcv_space - static_cast<std::uint32_t>(_readable_bytes) : 0;
  const std::int32_t offered_now = _rcv_adv - _rcv_nxt;
  const std::uint32_t offered = offered_now > 0 ? static_cast<std::uint32_t>(offered_now) : 0;
  // As Linux: only when the window would at least double, by a segment
  // or more (a reader keeping up causes no extra ACKs).
  if (space >= 2 * offered && space - offered >= _rcv_mss) send_ack(now);
}

// --- Loss recovery. -------------------------------------------------------------

std::uint32_t tcp_connection::sacked_bytes() const noexcept {
  std::uint32_t n = 0;
  for (const tcp_sack_block& b : _scoreboard) n += tcp_seq(b.right) - tcp_seq(b.left);
  return n;
}

std::uint32_t tcp_connection::loss_threshold() const noexcept {
  // RFC 6675: more than (DupThresh - 1) segments' worth SACKed above a
  // byte says it is lost. A flight too small to bring DupThresh
  // duplicates, with nothing new to send, lowers DupThresh to the flight
  // less one (early retransmit, RFC 5827).
  // After a tail loss probe, the time for reordering has passed already
  // (PTO >= 2 SRTT): a hole below anything SACKed is lost (RACK's
  // conclusion, RFC 8985 7.4).
  if (_probe_out) return 0;
  std::uint32_t dupthresh = 3;
  const std::uint32_t flight = _snd_max - _snd_una;
  const std::uint32_t segments = (flight + _snd_mss - 1) / _snd_mss;
  if (segments < 4 && _snd_nxt >= data_end()) dupthresh = std::max<std::uint32_t>(segments, 2) - 1;
  return (dupthresh - 1) * _snd_mss;
}

tcp_seq tcp_connection::lost_boundary() const noexcept {
  // Holes lie between blocks, so the boundary is the left edge of the
  // highest block from which the bytes SACKed above pass the threshold.
  const std::uint32_t threshold = loss_threshold();
  std::uint32_t above = 0;
  for (auto it = _scoreboard.rbegin(); it != _scoreboard.rend(); ++it) {
    above += tcp_seq(it->right) - tcp_seq(it->left);
    if (above > threshold) return tcp_seq(it->left);
  }
  return _snd_una;
}

bool tcp_connection::sack_says_lost() const noexcept {
  return !_scoreboard.empty() && lost_boundary() > _snd_una;
}

std::uint32_t tcp_connection::in_flight() const noexcept {
  std::int64_t pipe = _snd_nxt - _snd_una;
  if (_sack_ok) {
    for (const tcp_sack_block& b : _scoreboard) {
      const tcp_seq right = std::min(tcp_seq(b.right), _snd_nxt);
      if (right > tcp_seq(b.left)) pipe -= right - tcp_seq(b.left);
    }
    if (_in_recovery) {
      // Lost and not yet sent again: not in the network.
      const tcp_seq boundary = lost_boundary();
      tcp_seq hole_start = _snd_una;
      for (const tcp_sack_block& b : _scoreboard) {
        const tcp_seq hole_end = std::min(tcp_seq(b.left), boundary);
        const tcp_seq from = std::max(hole_start, _high_rxt);
        if (hole_end > from) pipe -= hole_end - from;
        hole_start = tcp_seq(b.right);
        if (hole_start >= boundary) break;
      }
    }
  }
  return pipe > 0 ? static_cast<std::uint32_t>(pipe) : 0;
}

void tcp_connection::enter_recovery(tcp_time now) {
  ++_stats.fast_retransmits;
  _cc->on_congestion(in_flight());
  _in_recovery = true;
  _recover = _snd_max;
  _rtt_timing = false;
  // The first lost segment goes at once, whatever the pipe says (RFC 6675
  // 5 (4.3), RFC 6582 3.2 (2)).
  const tcp_seq first_sacked = _scoreboard.empty() ? _snd_max : tcp_seq(_scoreboard.front().left);
  const std::uint32_t hole = first_sacked - _snd_una;
  _pass_mark = _snd_max;
  _pass_marked = true;
  const std::uint32_t first_length = std::min(current_mss(), std::max<std::uint32_t>(hole, 1));
  send_range(_snd_una, first_length, now);
  _high_rxt = _snd_una + first_length;
  if (!_sack_ok) _inflation = 3 * _snd_mss;
}

bool tcp_connection::retransmit_next_hole(tcp_time now) {
  const tcp_seq boundary = lost_boundary();
  tcp_seq hole_start = _snd_una;
  for (const tcp_sack_block& b : _scoreboard) {
    const tcp_seq hole_end = std::min(tcp_seq(b.left), boundary);
    const tcp_seq from = std::max(hole_start, _high_rxt);
    if (hole_end > from) {
      // A whole segment from the hole's start, SACKed bytes after it or
      // not: a peer's tiny holes must not become tiny segments.
      const std::uint32_t length = std::min<std::uint32_t>(std::max<std::int32_t>(data_end() - from, 0), current_mss());
      if (!_pass_marked) {
        _pass_mark = _snd_max;
        _pass_marked = true;
      }
      send_range(from, length, now);
      _high_rxt = from + length;
      return true;
    }
    hole_start = tcp_seq(b.right);
    if (hole_start >= boundary) break;
  }
  return false;
}

void tcp_connection::check_lost_retransmission() noexcept {
  if (!_pass_marked || _scoreboard.empty() || _high_rxt <= _snd_una) return;
  // Bytes sent after the pass's first retransmission SACKed while the
  // hole at SND.UNA (retransmitted first) is still open: on a path that
  // keeps order, that retransmission is lost. (A reordering path costs a
  // spurious retransmission, which D-SACK reports.)
  const tcp_seq highest = tcp_seq(_scoreboard.back().right);
  if (highest <= _pass_mark) return;
  if (tcp_seq(_scoreboard.front().left) <= _snd_una) return;
  ++_stats.lost_retransmits;
  _high_rxt = _snd_una;
  _pass_marked = false;
}

void tcp_connection::on_retransmission_timeout(tcp_time now) {
  ++_stats.timeouts;
  if (_state == tcp_state::syn_sent || _state == tcp_state::syn_received) {
    if (++_retries > _config.syn_retries) {
      ++_stats.connections_timed_out;
      if (_state == tcp_state::syn_received && _passive) {
        send_reset(now);
        become(tcp_state::closed);
        clear_timers();
        _error = errc(ETIMEDOUT);
      } else {
        fail(errc(ETIMEDOUT), now);
      }
      return;
    }
    _rtt.back_off();
    _rtt_timing = false;
    send_syn(now);
    arm_rto(now);
    return;
  }
  if (++_retries > _config.retries) {
    ++_stats.connections_timed_out;
    send_reset(now);
    fail(errc(ETIMEDOUT), now);
    return;
  }
  _rtt.back_off();
  _cc->on_timeout(_snd_max - _snd_una);
  _in_recovery = false;
  _pass_marked = false;
  _inflation = 0;
  _dupacks = 0;
  _recover = _snd_max;
  _scoreboard.clear();  // (RFC 2018 8: the receiver may have dropped what it SACKed)
  _rtt_timing = false;
  // Go back to the first unacknowledged byte; ACKs clock the rest out
  // again in slow start.
  _snd_nxt = _snd_una;
  _high_rxt = _snd_una;
  send_range(_snd_una, current_mss(), now);
  arm_rto(now);
}

// --- Timers. --------------------------------------------------------------------

tcp_time tcp_connection::next_deadline() const noexcept {
  return std::min({_rto_at, _probe_at, _delack_at, _persist_at, _keepalive_at, _time_wait_at, _fin_wait_2_at});
}

void tcp_connection::on_timer(tcp_time now) {
  if (_state == tcp_state::closed) {
    clear_timers();  // (nothing runs on a closed connection)
    return;
  }
  if (_time_wait_at <= now) {
    clear_timers();
    become(tcp_state::closed);
    notify();
    return;
  }
  if (_fin_wait_2_at <= now) {
    clear_timers();
    become(tcp_state::closed);
    notify();
    return;
  }
  if (_rto_at <= now) {
    _rto_at = tcp_time_never;
    _probe_at = tcp_time_never;
    on_retransmission_timeout(now);
  }
  if (_probe_at <= now) {
    _probe_at = tcp_time_never;
    const bool sending = _state == tcp_state::established || _state == tcp_state::close_wait ||
                         _state == tcp_state::fin_wait_1 || _state == tcp_state::closing ||
                         _state == tcp_state::last_ack;
    if (sending && _snd_max > _snd_una) send_tail_loss_probe(now);
  }
  if (_delack_at <= now) {
    _delack_at = tcp_time_never;
    send_ack(now);
  }
  if (_persist_at <= now) {
    _persist_at = tcp_time_never;
    const bool waiting = _snd_nxt < data_end() || (_fin_queued && !_fin_sent);
    const std::int32_t by_window = (_snd_una + _snd_wnd) - _snd_nxt;
    if (waiting && _snd_una == _snd_max && by_window > 0 && _snd_nxt < data_end()) {
      // A small window: what fits goes after all.
      send_range(_snd_nxt, std::min<std::uint32_t>({static_cast<std::uint32_t>(by_window), current_mss(),
                                                    static_cast<std::uint32_t>(data_end() - _snd_nxt)}),
                 now);
    } else if (waiting && _snd_una == _snd_max) {
      // Probes a peer answers (with window 0) may go on as long as it
      // answers, backing off; unanswered ones end the connection.
      if (++_probes > _config.retries) {
        ++_stats.connections_timed_out;
        send_reset(now);
        fail(errc(ETIMEDOUT), now);
        notify();
        return;
      }
      ++_stats.window_probes;
      send_probe(now);
      if (_persist_backoff < 31) ++_persist_backoff;
      arm_persist(now);
    }
  }
  if (_keepalive_at <= now) {
    if (_snd_max > _snd_una || !_config.keepalive) {
      // Data in flight: the retransmission timer watches the peer.
      _keepalive_at = _config.keepalive ? now + _config.keepalive_params.idle : tcp_time_never;
    } else if (_keepalives_sent >= _config.keepalive_params.count) {
      ++_stats.connections_timed_out;
      send_reset(now);
      fail(errc(ETIMEDOUT), now);
    } else {
      ++_keepalives_sent;
      ++_stats.keepalive_probes;
      send_probe(now);
      _keepalive_at = now + _config.keepalive_params.interval;
    }
  }
  notify();
}

void tcp_connection::arm_rto(tcp_time now) noexcept { _rto_at = now + _rtt.rto(); }

void tcp_connection::arm_probe(tcp_time now) noexcept {
  // RFC 8985 7.2: PTO = 2 SRTT (at least 2 ms, a timer's worth), plus the
  // peer's longest delayed ACK when one segment is all that is out; not
  // before a round trip is known, not after a timeout until a new round
  // trip is measured, never past the RTO. (Unlike the RFC,
  // in a recovery too: with a small window, one lost ACK otherwise
  // leaves the sender waiting for the RTO with the pipe full.)
  _probe_at = tcp_time_never;
  if (!_rtt.has_sample() || _snd_max == _snd_una || !_was_established || _rtt.backoffs() > 0) return;
  tcp_time pto = std::max<tcp_time>(2 * _rtt.srtt(), 2ms);
  if (_snd_max - _snd_una <= static_cast<std::int32_t>(_snd_mss)) pto += 200ms;
  if (_rto_at != tcp_time_never && now + pto >= _rto_at) return;
  _probe_at = now + pto;
}

void tcp_connection::send_tail_loss_probe(tcp_time now) {
  // RFC 8985 7.3: a new segment if the peer's window lets one go, else
  // the last one again; its ACK (with SACK) shows what the tail lost,
  // without waiting for the retransmission timer.
  ++_stats.tail_loss_probes;
  _probe_out = true;
  const std::int32_t by_window = (_snd_una + _snd_wnd) - _snd_nxt;
  if (_snd_nxt < data_end() && _snd_nxt == _snd_max && by_window > 0) {
    const std::uint32_t length = std::min<std::uint32_t>(
        {static_cast<std::uint32_t>(data_end() - _snd_nxt), current_mss(), static_cast<std::uint32_t>(by_window)});
    send_range(_snd_nxt, length, now);
  } else {
    const std::uint32_t data_out = (_fin_sent ? _fin_seq : _snd_max) - _snd_una;
    const std::uint32_t length = std::min(data_out, current_mss());
    send_range(_snd_una + (data_out - length), length, now);
  }
  arm_rto(now);
}

void tcp_connection::arm_persist(tcp_time now) noexcept {
  // The retransmission timeout, doubled for each probe unanswered by an
  // opening window, up to the largest (RFC 9293 3.8.6.1).
  tcp_time wait = _rtt.rto();
  for (unsigned i = 0; i < _persist_backoff && wait < _config.rtt.max_rto; ++i) wait *= 2;
  _persist_at = now + std::min<tcp_time>(wait, _config.rtt.max_rto);
}

void tcp_connection::enter_time_wait(tcp_time now) {
  clear_timers();
  become(tcp_state::time_wait);
  _time_wait_at = now + _config.time_wait;
}

void tcp_connection::clear_timers() noexcept {
  _rto_at = _probe_at = _delack_at = _persist_at = _keepalive_at = _time_wait_at = _fin_wait_2_at = tcp_time_never;
}

void tcp_connection::fail(std::error_code e, tcp_time) {
  if (!_error) _error = e;
  clear_timers();
  become(tcp_state::closed);
  _send_queue.clear();
  _send_bytes = 0;
  _readable.clear();
  _readable_bytes = 0;
  _back_is_gather = false;
  _gather = temporary_buffer<char>();
  _out_of_order.clear();
  _out_of_order_cost = 0;
}

void tcp_connection::become(tcp_state s) noexcept {
  if (_state == s) return;
  _state = s;
  changed();
}

void tcp_connection::notify() {
  if (!_changed || !_on_change) return;
  _changed = false;
  _on_change();
}

std::uint32_t tcp_connection::ts_value(tcp_time now) const noexcept { return timestamp_at(_iss, now); }

}  // namespace reef::tcpip
