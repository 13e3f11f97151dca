// Fuzzes TCP's connection state machine with arbitrary segments: a
// connection opened from a listener's SYN (passive) and one that
// connected (active), each fed segments whose header bytes come from the
// input (parsed as the receive path parses them, checksum aside so that
// the fuzzer gets past it), with time moving, timers running, and the
// application writing, reading, closing and aborting in between.
//
// The input is records: an operation byte, a 2-byte big-endian length,
// then that many bytes. Operation % 8: 0 and 1, a segment for the active
// and the passive connection; 2, time moves by the bytes' value in
// milliseconds; 3, the application writes that many bytes; 4, it reads
// all; 5, it shuts down output; 6, it shuts down input or aborts; 7, it
// flips no-delay and keepalive and sets the buffers. The active and
// passive one take turns for 3 to 7 (the operation's top bit).
//
// Whatever comes in: no crash, no read out of bounds, nothing held past
// its bound (unread bytes within the receive buffer, queued bytes within
// the send buffer and one write), every segment sent writable as a
// header, and timers that move on (a timer that keeps firing without the
// clock moving would spin a shard).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tcpip/tcp_connection.h"

namespace {

using namespace reef;
using namespace reef::tcpip;
using namespace std::chrono_literals;

constexpr std::uint32_t our_ip = 0x0a000002;
constexpr std::uint32_t peer_ip = 0x0a000001;

struct side {
  explicit side(const tcp_config& config, tcp_seq isn, tcp_stats& stats)
      : conn(config, {our_ip, 80, peer_ip, 40000}, isn,
             [](tcp_header& h, packet&& p) {
               std::uint8_t out[tcp_header::max_size];
               if (h.options.size() > tcp_header::max_size - tcp_header::min_size) __builtin_trap();
               if (h.write(out) != tcp_header::min_size + h.options.size()) __builtin_trap();
               if (p.len() > 65535) __builtin_trap();
             },
             stats) {}
  tcp_connection conn;
};

tcp_config config_for_fuzzing() {
  tcp_config c;
  c.send_buffer = 64 * 1024;
  c.receive_buffer = 128 * 1024;
  c.initial_receive_window = 16 * 1024;
  c.rtt.min_rto = 20ms;
  c.time_wait = 2s;
  c.fin_wait_2 = 3s;
  c.retries = 5;
  c.syn_retries = 3;
  c.keepalive_params = {.idle = std::chrono::seconds(5), .interval = std::chrono::seconds(1), .count = 2};
  return c;
}

void check(const tcp_connection& c, const tcp_config& config) {
  if (c.readable() > config.receive_buffer + (1u << 14)) __builtin_trap();  // (a scaled window rounds up)
  if (c.send_queued() > config.send_buffer + 65535) __builtin_trap();
}

// Runs what is due, as the layer's timer does; traps if the timers do not
// move past `now` within a bounded number of rounds.
void run_timers(tcp_connection& c, tcp_time now) {
  for (int rounds = 0; c.next_deadline() <= now; ++rounds) {
    if (rounds > 64) __builtin_trap();
    c.on_timer(now);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const tcp_config config = config_for_fuzzing();
  tcp_stats stats;
  tcp_time now = 1000s;
  side active(config, tcp_seq(1000), stats);
  side passive(config, tcp_seq(0xfffff000), stats);  // (wraps early)
  active.conn.connect(now);
  tcp_header syn;
  syn.source_port = 40000;
  syn.destination_port = 80;
  syn.flags = tcp_flags::syn;
  syn.seq = 5000;
  syn.window = 8192;
  syn.options.mss = 1200;
  syn.options.window_scale = 3;
  syn.options.sack_permitted = true;
  syn.options.timestamps = std::array<std::uint32_t, 2>{100, 0};
  passive.conn.accept(syn, now);

  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::uint8_t op = data[at];
    const std::size_t n = std::min<std::size_t>(std::size_t{data[at + 1]} << 8 | data[at + 2], size - at - 3);
    const std::span<const std::uint8_t> bytes(data + at + 3, n);
    at += 3 + n;
    tcp_connection& c = (op & 0x80) != 0 ? passive.conn : active.conn;
    switch (op % 8) {
      case 0:
      case 1: {
        tcp_connection& target = op % 8 == 0 ? active.conn : passive.conn;
        tcp_header h;
        if (tcp_header::parse(bytes, peer_ip, our_ip, h, true) != tcp_error::none) break;
        if (h.header_length > bytes.size()) __builtin_trap();
        const auto payload = bytes.subspan(h.header_length);
        target.receive(h,
                       payload.empty() ? packet()
                                       : packet::copy_of(std::string_view(
                                             reinterpret_cast<const char*>(payload.data()), payload.size())),
                       now);
        break;
      }
      case 2: {
        std::uint32_t ms = 0;
        for (std::uint8_t b : bytes.first(std::min<std::size_t>(bytes.size(), 2))) ms = ms << 8 | b;
        now += std::chrono::milliseconds(ms);
        run_timers(active.conn, now);
        run_timers(passive.conn, now);
        break;
      }
      case 3:
        if (c.can_send() && n > 0) {
          c.send(packet::copy_of(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())), now);
        }
        break;
      case 4:
        while (auto b = c.read(now)) {
          if (b.size() > config.receive_buffer) __builtin_trap();
        }
        break;
      case 5:
        c.shutdown_output(now);
        break;
      case 6:
        if (n % 2 == 0) {
          c.shutdown_input(now);
        } else {
          c.abort(now);
        }
        break;
      case 7:
        c.set_no_delay(n % 2 == 1, now);
        c.set_keepalive(n % 3 == 1, now);
        c.set_send_buffer(static_cast<std::uint32_t>(4096 + n * 256), now);
        break;
    }
    check(active.conn, config);
    check(passive.conn, config);
  }
  // The end: time runs out and everything winds down without spinning.
  for (int i = 0; i < 8; ++i) {
    now += 30s;
    run_timers(active.conn, now);
    run_timers(passive.conn, now);
  }
  return 0;
}
