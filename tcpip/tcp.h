// TCP on the native stack: one shard's connections and listeners on one
// IPv4 interface, behind net/api.h's connected_socket and server_socket,
// so that programs keep their code. Each connection is a tcp_connection
// (tcpip/tcp_connection.h) driven from here: segments from the
// interface, a timer on the reactor armed only while the connection has
// something to time, and the application's streams.
//
//   tcp_layer tcp(ip);                  // the interface's protocol 6
//   server_socket s = tcp.listen(ipv4_socket_address(0, 80), {});
//   accept_result a = co_await s.accept();
//   connected_socket c = co_await tcp.connect(ipv4_socket_address(peer, 80), {});
//
// Listeners answer SYNs with a SYN-ACK and keep the half-open connection,
// up to tcp_limits::syn_backlog of them; past that (a SYN flood) they
// answer with SYN cookies (RFC 4987) and keep nothing. Established
// connections wait for accept() up to listen_options::backlog; past it
// they are reset. A segment for no
// connection and no listener is answered with a reset. Limits per shard:
// connections (at it, the oldest TIME-WAIT connection gives way; past
// it, SYNs get cookies and connect() fails with ENOBUFS) and bytes
// buffered by all connections, sent, unread or held out of order (past
// it, a connection that holds bytes already takes no more: its peer
// sends again later, and its writer waits).
//
// Thread rules: one shard; its sockets, streams and accept() there. The
// layer outlives the sockets and channels made from it (it resets what
// is left when destroyed: their streams then see end of stream and
// their writes fail).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "core/circular_buffer.h"
#include "core/function.h"
#include "core/future.h"
#include "core/lw_shared_ptr.h"
#include "net/api.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/tcp_connection.h"
#include "tcpip/tcp_sequence.h"

namespace reef::tcpip {

struct tcp_limits {
  std::size_t connections_max = 65536;                // per shard
  /// Half-open connections a listener keeps (SYN-RECEIVED); SYNs past it
  /// get cookies. (listen_options::backlog bounds the accept queue.)
  std::size_t syn_backlog = 1024;
  std::size_t buffered_bytes_max = std::size_t{256} << 20;  // per shard, sent and received
  std::uint16_t ephemeral_first = 32768;
  std::uint16_t ephemeral_last = 60999;
};

struct tcp_layer_options {
  /// Every connection's settings. (Its mss and tso_bytes are the layer's:
  /// from `mss` and the device.)
  tcp_config connection;
  /// Our MSS; by default the interface's MTU less 40 (the IPv4 and TCP
  /// headers). At most that; at least 88 (else std::invalid_argument).
  std::optional<std::uint16_t> mss;
  tcp_limits limits;
  /// Answer SYNs past a listener's backlog with cookies (else drop them).
  bool syn_cookies = true;
};

/// One shard's TCP counts.
struct tcp_layer_stats {
  tcp_stats segments;                       // what the connections counted
  std::uint64_t header_errors = 0;          // truncated, bad offsets or options, bad checksum
  std::uint64_t bad_checksums = 0;          // (also in header_errors)
  std::uint64_t not_for_us = 0;             // to a broadcast or another address
  std::uint64_t resets_for_no_socket = 0;   // a segment for no connection and no listener
  std::uint64_t syn_cookies_sent = 0;
  std::uint64_t syn_cookies_accepted = 0;
  std::uint64_t syn_cookies_rejected = 0;   // an ACK to a listener whose cookie did not check out
  std::uint64_t syns_dropped = 0;           // past the backlog or the connection limit, no cookies
  std::uint64_t accept_overflows = 0;       // established but the accept queue was full: reset
  std::uint64_t memory_drops = 0;           // data dropped past buffered_bytes_max
  std::uint64_t time_wait_evicted = 0;      // TIME-WAIT connections ended early at connections_max
  std::uint64_t connections_opened = 0;     // active and passive, established or not
  std::uint64_t connections_closed = 0;     // forgotten: finished and let go
  std::uint64_t connections = 0;            // now: the table's size
  std::uint64_t timers_armed = 0;           // now: connections with a timer armed
  std::uint64_t buffered_bytes = 0;         // now: queued to send and unread

  /// Adds another shard's counts (gauges add up too).
  tcp_layer_stats& operator+=(const tcp_layer_stats& o) noexcept;
};

class tcp_layer {
 public:
  /// Takes the interface's TCP segments (its protocol 6 handler) unless
  /// `own_handler` is false (a sharded stack steers them itself and calls
  /// receive()).
  explicit tcp_layer(ipv4_interface& ip, tcp_layer_options options = {}, bool own_handler = true);
  ~tcp_layer();
  tcp_layer(const tcp_layer&) = delete;
  tcp_layer& operator=(const tcp_layer&) = delete;

  /// Listens on `local`'s port (its address must be the interface's or
  /// 0.0.0.0; port 0: an ephemeral port). Throws std::system_error:
  /// EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT.
  server_socket listen(const socket_address& local, const listen_options& options);
  /// Connects to `remote` (IPv4) from the interface's address and an
  /// ephemeral port (one set_ephemeral_filter() allows) or
  /// `options.local`'s port. Fails with std::system_error (ECONNREFUSED,
  /// ETIMEDOUT, ECONNRESET, EADDRNOTAVAIL, EADDRINUSE, ENOBUFS,
  /// EAFNOSUPPORT, ENETUNREACH), timed_out_error or
  /// abort_requested_exception.
  future<connected_socket> connect(const socket_address& remote, const connect_options& options);

  /// Which local ports connect() may pick for a peer (a sharded stack
  /// takes those whose segments the steering brings back to this shard).
  /// Called on this shard; kept until replaced.
  using ephemeral_filter = noncopyable_function<bool(std::uint16_t local_port, std::uint32_t remote_ip,
                                                     std::uint16_t remote_port)>;
  void set_ephemeral_filter(ephemeral_filter f) { _ephemeral_ok = std::move(f); }

  /// A TCP segment for us (the interface's handler, or the stack's);
  /// `checksum`: whether the device checked it.
  void receive(const ipv4_header& h, packet&& data, checksum_status checksum = checksum_status::unknown) noexcept;

  /// Resets every connection (RST to each synchronized peer) and closes
  /// every listener: a stack that stops.
  void abort_all() noexcept;

  tcp_layer_stats stats() const noexcept;
  /// A connection's info, by its 4-tuple (for tests and diagnostics).
  std::optional<tcp_info> info(const tcp_tuple& t) const noexcept;

  struct entry;     // a connection and what waits on it (tcp.cc)
  struct listener;  // a listening port (tcp.cc)

 private:
  friend class native_tcp_socket;
  friend class native_tcp_source;
  friend class native_tcp_sink;
  friend class native_tcp_server_socket;
  friend std::unique_ptr<connected_socket_impl> socket_for(const lw_shared_ptr<entry>& e);

  struct tuple_hash {
    std::size_t operator()(const tcp_tuple& t) const noexcept {
      return (std::size_t{t.remote_ip} * 0x9e3779b97f4a7c15ull) ^ (std::size_t{t.remote_port} << 16) ^
             t.local_port ^ (std::size_t{t.local_ip} << 32);
    }
  };

  static tcp_time now() noexcept;
  // Waits for an active open to end, or for its timeout or abort.
  static future<connected_socket> wait_connected(lw_shared_ptr<entry> e, std::optional<std::chrono::milliseconds> timeout,
                                                 abort_source* abort);
  lw_shared_ptr<entry> make_entry(const tcp_tuple& t, tcp_seq isn);
  void after(const lw_shared_ptr<entry>& e) noexcept;
  void forget(const lw_shared_ptr<entry>& e) noexcept;
  // Resets `e` and lets it go (an allocation failed where it cannot go on).
  static void abort_entry(const lw_shared_ptr<entry>& e) noexcept;
  // Forgets the oldest connection in TIME-WAIT, if any: room at the limit.
  bool evict_time_wait() noexcept;
  void on_timer(const lw_shared_ptr<entry>& e) noexcept;
  void drop_handle(const lw_shared_ptr<entry>& e) noexcept;
  // Sends a segment; `segment_size`: the connection's, for a payload
  // longer than it that the device is to cut (TSO).
  void transmit(std::uint32_t source, std::uint32_t destination, tcp_header& h, packet&& payload,
                std::uint32_t segment_size = 0) noexcept;
  void receive_for_listener(const lw_shared_ptr<listener>& l, const tcp_tuple& t, const tcp_header& h, packet&& payload);
  void reset_for(const tcp_tuple& t, const tcp_header& h, std::size_t payload_length) noexcept;
  void send_cookie(const tcp_tuple& t, const tcp_header& syn);
  bool check_cookie(const tcp_tuple& t, const tcp_header& ack, tcp_connection::cookie_options& out) const noexcept;
  std::uint32_t cookie_hash(const tcp_tuple& t, std::uint32_t counter, std::uint32_t peer_isn) const noexcept;
  bool over_memory() const noexcept { return _buffered > _options.limits.buffered_bytes_max; }
  void close_listener(listener& l) noexcept;

  ipv4_interface& _ip;
  tcp_layer_options _options;
  bool _own_handler;
  isn_generator _isn;
  std::array<std::uint8_t, 16> _cookie_secret;
  std::unordered_map<tcp_tuple, lw_shared_ptr<entry>, tuple_hash> _connections;
  std::unordered_map<std::uint16_t, lw_shared_ptr<listener>> _listeners;
  circular_buffer<tcp_tuple> _time_wait;  // connections that entered TIME-WAIT, oldest first
  ephemeral_filter _ephemeral_ok;
  std::uint16_t _next_ephemeral;
  std::size_t _buffered = 0;
  std::size_t _timers_armed = 0;
  tcp_stats _segments;  // the connections' counts
  tcp_layer_stats _stats;
};

}  // namespace reef::tcpip
