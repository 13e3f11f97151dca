// Two connections over a simulated path, on a clock of the test's own:
// the path loses and reorders segments from a seed, and cuts segments
// longer than the MSS as a NIC's TSO does. Each run sends a stream both
// ways and checks every byte read; runs are deterministic (no real time),
// so many seeds run in a second, and a failing seed replays exactly.
//
//   tools/bazel test //tcpip:tcp_simulation_test --test_env=TCP_SIM_SEEDS=1000   # more seeds
//   ... --test_env=TCP_SIM_TRACE=1   # a failing seed prints its last 80 segments
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "tcpip/tcp_connection.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

struct path_options {
  double loss = 0;
  double reorder = 0;
  bool tso = false;
  std::uint64_t seed = 1;
};

// Byte i of a test stream (a different one each way).
char byte_at(std::uint64_t i, int way) { return static_cast<char>(((i + static_cast<unsigned>(way) * 7919) * 2654435761u) >> 13); }

struct in_flight {
  tcp_time due;
  int to;  // 0: A, 1: B
  tcp_header h;
  packet payload;
};

class simulation {
 public:
  simulation(const path_options& path, std::uint64_t total) : _path(path), _random(path.seed), _total(total) {
    tcp_config config;
    config.rtt.min_rto = 20ms;
    // (TIME-WAIT as long as usual: shorter, it may end before the
    // peer's FIN, resent after our lost ACK, comes again.)
    if (path.tso) config.tso_bytes = 65000;
    config.send_buffer = 256 << 10;
    const tcp_tuple a_tuple{1, 40000, 2, 80};
    const tcp_tuple b_tuple{2, 80, 1, 40000};
    _conn[0] = std::make_unique<tcp_connection>(config, a_tuple, tcp_seq(0xfff00000u),
                                                [this](tcp_header& h, packet&& p) { put(1, h, std::move(p)); }, _stats);
    _config = config;
    _b_tuple = b_tuple;
  }

  // Runs until both streams are read whole and both ends closed, or
  // simulated time runs out; says what went wrong, or "".
  std::string run() {
    _conn[0]->connect(_now);
    for (int steps = 0; steps < 2'000'000 && _now < 900s; ++steps) {
      // Segments due now, in order.
      while (!_wire.empty() && _wire.front().due <= _now) {
        in_flight f = std::move(_wire.front());
        _wire.pop_front();
        deliver(f);
      }
      for (auto& c : _conn) {
        if (c && c->next_deadline() <= _now) c->on_timer(_now);
      }
      if (!_error.empty()) return _error;
      if (std::string e = application(); !e.empty()) return e;
      if (_done[0] && _done[1] && _conn[0]->state() == tcp_state::closed && _conn[1] &&
          _conn[1]->state() == tcp_state::closed) {
        return "";
      }
      if (_done[0] && _done[1] && (_reset_after_done[0] || _reset_after_done[1])) {
        // Both streams crossed whole, and then an end that had finished
        // its TIME-WAIT reset the other, still resending its last bytes
        // or FIN after a lost ACK (as a host answers a segment for no
        // connection): a correct end, as on Linux.
        return "";
      }
      // To the next event.
      tcp_time next = tcp_time_never;
      if (!_wire.empty()) next = _wire.front().due;
      for (auto& c : _conn) {
        if (c) next = std::min(next, c->next_deadline());
      }
      if (next == tcp_time_never) return "stuck: nothing due, streams unfinished";
      _now = std::max(_now, next);
    }
    return "ran out of time";
  }

 private:
  void put(int to, tcp_header& h, packet&& p) {
    // TSO: cut as a NIC would (FIN and PSH on the last piece).
    const std::uint32_t mss = _conn[1 - to] ? _conn[1 - to]->segment_size() : 1460;
    if (_path.tso && p.len() > mss) {
      for (std::uint32_t at = 0; at < p.len(); at += mss) {
        const std::uint32_t n = std::min<std::uint32_t>(mss, static_cast<std::uint32_t>(p.len()) - at);
        tcp_header piece = h;
        piece.seq = h.seq + at;
        if (at + n < p.len()) piece.flags &= static_cast<std::uint8_t>(~(tcp_flags::fin | tcp_flags::psh));
        send_on(to, piece, p.share(at, n));
      }
      return;
    }
    send_on(to, h, std::move(p));
  }

  void send_on(int to, const tcp_header& h, packet&& p) {
    // What crosses the wire fits the MTU: options (SACK blocks too) and
    // data within the MSS.
    if (h.options.size() + p.len() > _config.mss && _error.empty()) {
      _error = "a segment of " + std::to_string(p.len()) + " bytes with " + std::to_string(h.options.size()) +
               " bytes of options passed the MTU";
    }
    const bool lost = std::uniform_real_distribution<>(0, 1)(_random) < _path.loss;
    if (std::getenv("TCP_SIM_TRACE")) {
      char line[256];
      std::snprintf(line, sizeof line, "%8.3f %s seq=%u ack=%u len=%zu flags=%02x win=%u sack=%zu%s", _now.count() / 1000.0,
                    to == 1 ? "A>B" : "B>A", h.seq, h.ack, p.len(), h.flags, h.window, static_cast<std::size_t>(h.options.sack_count), lost ? " LOST" : "");
      _trace.push_back(line);
      if (_trace.size() > 80) _trace.pop_front();
    }
    if (lost) return;
    // A copy of the bytes, as a wire makes.
    packet copy = p.len() > 0 ? packet(p.share().linearize().clone()) : packet();
    tcp_time due = _now + 1ms;
    in_flight f{due, to, h, std::move(copy)};
    if (std::uniform_real_distribution<>(0, 1)(_random) < _path.reorder) f.due += 2ms;  // overtaken
    auto it = std::upper_bound(_wire.begin(), _wire.end(), f.due, [](tcp_time t, const in_flight& x) { return t < x.due; });
    _wire.insert(it, std::move(f));
  }

  void deliver(in_flight& f) {
    if (f.to == 1 && !_conn[1]) {
      if (!f.h.has(tcp_flags::syn) || f.h.has(tcp_flags::ack)) return;
      _conn[1] = std::make_unique<tcp_connection>(_config, _b_tuple, tcp_seq(0x7ffff000u),
                                                  [this](tcp_header& h, packet&& p) { put(0, h, std::move(p)); }, _stats);
      _conn[1]->accept(f.h, _now);
      return;
    }
    if (!_conn[f.to]) return;
    if (_conn[f.to]->state() == tcp_state::closed && _done[f.to]) {
      // The connection is gone: the host answers with a reset (RFC 9293
      // 3.10.7.1), as tcp_layer does.
      if (f.h.has(tcp_flags::rst)) return;
      tcp_header rst;
      rst.flags = tcp_flags::rst;
      if (f.h.has(tcp_flags::ack)) {
        rst.seq = f.h.ack;
      } else {
        rst.flags |= tcp_flags::ack;
        rst.ack = f.h.seq + static_cast<std::uint32_t>(f.payload.len()) + (f.h.has(tcp_flags::fin) ? 1 : 0);
      }
      rst.source_port = f.h.destination_port;
      rst.destination_port = f.h.source_port;
      send_on(1 - f.to, rst, packet());
      return;
    }
    _conn[f.to]->receive(f.h, std::move(f.payload), _now);
  }

  // Each side writes its stream while there is room, reads and checks
  // what came, and closes when it has written all and read to the end.
  std::string application() {
    for (int side = 0; side < 2; ++side) {
      tcp_connection* c = _conn[side].get();
      if (!c || c->state() == tcp_state::syn_sent || c->state() == tcp_state::syn_received) continue;
      if (c->error()) {
        if (!_done[0] || !_done[1]) return "side " + std::to_string(side) + " failed: " + c->error().message();
        _reset_after_done[side] = true;
        continue;
      }
      while (_sent[side] < _total && c->can_send() && c->send_space() > 0) {
        const std::size_t n = std::min<std::uint64_t>({_total - _sent[side], c->send_space(), 20000});
        temporary_buffer<char> b(n);
        for (std::size_t i = 0; i < n; ++i) b.get_write()[i] = byte_at(_sent[side] + i, side);
        c->send(packet(std::move(b)), _now);
        _sent[side] += n;
      }
      if (_sent[side] == _total && !_shut[side]) {
        _shut[side] = true;
        c->shutdown_output(_now);
      }
      for (;;) {
        temporary_buffer<char> b = c->read(_now);
        if (b.empty()) break;
        for (std::size_t i = 0; i < b.size(); ++i) {
          if (b[i] != byte_at(_read[side] + i, 1 - side)) {
            return "side " + std::to_string(side) + " read a wrong byte at " + std::to_string(_read[side] + i) +
                   " (a buffer of " + std::to_string(b.size()) + " from " + std::to_string(_read[side]) + ")";
          }
        }
        _read[side] += b.size();
      }
      if (c->eof() && !_done[side]) {
        if (_read[side] != _total) return "side " + std::to_string(side) + " saw the end after " + std::to_string(_read[side]);
        _done[side] = true;
        c->release(_now);
      }
    }
    return "";
  }

  path_options _path;
  std::mt19937_64 _random;
  std::uint64_t _total;
  tcp_config _config;
  tcp_tuple _b_tuple;
  tcp_stats _stats;
  tcp_time _now{1'000'000};
  std::unique_ptr<tcp_connection> _conn[2];
  std::deque<in_flight> _wire;
  std::uint64_t _sent[2] = {0, 0};
  std::uint64_t _read[2] = {0, 0};
  bool _shut[2] = {false, false};
  bool _done[2] = {false, false};
  bool _reset_after_done[2] = {false, false};  // an error once both streams crossed
  std::deque<std::string> _trace;  // the last segments, with TCP_SIM_TRACE
  std::string _error;              // what the path saw go wrong

 public:
  const std::deque<std::string>& trace() const noexcept { return _trace; }
};

void run_seeds(path_options path, std::uint64_t total, int seeds) {
  if (std::getenv("TCP_SIM_SEEDS")) seeds = atoi(std::getenv("TCP_SIM_SEEDS"));
  for (int seed = 1; seed <= seeds; ++seed) {
    path.seed = static_cast<std::uint64_t>(seed);
    simulation s(path, total);
    const std::string failed = s.run();
    if (!failed.empty()) {
      for (const std::string& line : s.trace()) std::fprintf(stderr, "%s\n", line.c_str());
    }
    ASSERT_EQ(failed, "") << "seed " << seed << " (loss " << path.loss << ", reorder " << path.reorder
                          << (path.tso ? ", TSO" : "") << ")";
  }
}

TEST(tcp_simulation, streams_cross_a_clean_path) { run_seeds({}, 4 << 20, 1); }

TEST(tcp_simulation, streams_cross_a_lossy_reordering_path) { run_seeds({.loss = 0.05, .reorder = 0.05}, 256 << 10, 50); }

TEST(tcp_simulation, streams_in_tso_segments_cross_a_lossy_reordering_path) {
  run_seeds({.loss = 0.05, .reorder = 0.05, .tso = true}, 256 << 10, 50);
}

TEST(tcp_simulation, streams_cross_a_very_lossy_path) {
  run_seeds({.loss = 0.2, .reorder = 0.1, .tso = true}, 64 << 10, 30);
}

}  // namespace
}  // namespace reef::tcpip
