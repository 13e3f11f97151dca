// The HTTP/1.1 server of one shard. Run one per shard with sharded<>:
//
//   sharded<http::http_server> servers;
//   co_await servers.start(http::server_options{});
//   co_await servers.invoke_on_all([](http::http_server& s) {
//     s.get_routes().add("GET", "/hello", hello);
//     return s.listen(socket_address::parse("127.0.0.1:10000"));
//   });
//   ...
//   co_await servers.stop();      // graceful: see stop()
//
// Each shard listens on the port (SO_REUSEPORT: the kernel spreads the
// connections) and serves its own connections with its own routes.
//
// Connections: persistent (HTTP/1.1, or HTTP/1.0 with keep-alive);
// pipelined requests are answered in order, and the replies to requests
// that arrived together leave together (one send). A connection that sends
// nothing for `idle_timeout` is closed; one that starts a request and does
// not finish its head within `header_timeout` gets 408 and is closed
// (slowloris); one whose body does not arrive within `body_timeout` of its
// head, or that leaves replies untaken for `send_timeout`, is closed too.
// A request the parser refuses gets the parser's status with
// "Connection: close", then the connection closes. At most
// `connections_max` connections per shard are served; more wait to be
// accepted (in the kernel's accept queue, and on io_uring up to 64 per
// shard already accepted, holding a descriptor each).
//
// Thread rules: a server and its routes belong to one shard.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/future.h"
#include "core/gate.h"
#include "core/metrics.h"
#include "core/semaphore.h"
#include "http/reply_head.h"
#include "http/request_parser.h"
#include "http/routes.h"
#include "net/api.h"

namespace reef::http {

struct server_options {
  parser_limits limits;
  /// How long a connection may wait for the first byte of its next request.
  std::chrono::milliseconds idle_timeout{60'000};
  /// How long a request's head may take from its first byte.
  std::chrono::milliseconds header_timeout{10'000};
  /// How long a request's body may take once its head is in.
  std::chrono::milliseconds body_timeout{60'000};
  /// How long the client may leave a reply (or a piece of a streamed one)
  /// untaken before the connection is closed.
  std::chrono::milliseconds send_timeout{60'000};
  /// Connections served at once on each shard.
  std::size_t connections_max = 10'000;
  /// Memory for buffered request bodies on each shard, in bytes (at least
  /// limits.body_max): a request whose body does not fit waits for room,
  /// at most `body_memory_wait`, then gets 503 and the connection closes.
  /// (Streamed bodies, routes::add_streaming, take none of it.)
  std::size_t buffered_body_memory_max = 256 * 1024 * 1024;
  std::chrono::milliseconds body_memory_wait{5'000};
  /// What the server reads and drops of a streamed body the handler left
  /// unread, at most, before it closes the connection instead.
  std::uint64_t unread_body_drain_max = 1024 * 1024;
  /// The Server field of every reply.
  std::string server_name = "Reef";
  /// The value of the label `server` on this server's metrics (group
  /// "http", core/metrics.h); a second server on a shard with the same
  /// name gets "-2" (then "-3", ...) added. Empty: no metrics.
  std::string metrics_name = "http";
};

struct server_stats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t requests_served = 0;
  /// Requests the parser refused (4xx/5xx without a handler).
  std::uint64_t requests_refused = 0;
  /// Connections closed by a timeout (idle, head, body or send).
  std::uint64_t timeouts = 0;
  /// Requests refused with 503: no memory for their body in time.
  std::uint64_t requests_shed = 0;
  /// Requests whose body was streamed to their handler.
  std::uint64_t bodies_streamed = 0;
  /// Replies sent (handled and refused), by status class: [0] 1xx ... [4] 5xx.
  std::uint64_t replies_by_class[5] = {};
  /// Bytes read from connections.
  std::uint64_t bytes_received = 0;
  /// Bytes handed to connections' sockets (heads and bodies).
  std::uint64_t bytes_sent = 0;
};

class http_server {
 public:
  explicit http_server(server_options options = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  routes& get_routes() noexcept { return _routes; }

  /// Listens on `address` and serves what arrives there, until stop().
  /// Fails (std::system_error naming the call) if it cannot listen.
  future<> listen(socket_address address, listen_options options = {});

  /// Where it listens (with the ports the kernel picked).
  std::vector<socket_address> listening_addresses() const;

  /// Stops accepting, closes connections waiting for a request, lets the
  /// requests in flight finish (their replies say Connection: close), and
  /// resolves when every connection is closed. A client that does not take
  /// its reply holds this up for at most `send_timeout`.
  future<> stop();

  /// (Walks the open connections for their bytes sent.)
  server_stats stats() const noexcept;
  const server_options& options() const noexcept { return _options; }

 private:
  struct connection;
  class body_reader;
  class body_source;

  future<> accept_loop(server_socket& listener);
  future<> serve(connected_socket socket);
  // Serves the request whose head was just read and whose body streams to
  // its handler; resolves with whether the connection may stay open.
  future<bool> serve_streamed(connection& c);
  // Writes the reply to a handled request; whether the connection may stay
  // open.
  future<bool> finish_request(connection& c, request& req, reply& rep) noexcept;
  // Refuses the current request with 503: no memory for its body.
  future<> shed(connection& c);
  // Resolves with whether the connection may stay open.
  future<bool> write_reply(connection& c, request& req, reply& rep, bool keep_alive);
  // What `sending` resolves with (or `keep_alive`), the send deadline
  // armed meanwhile.
  future<bool> wait_for_send(connection& c, future<> sending, bool keep_alive);
  future<bool> wait_for_send(connection& c, future<bool> sending);
  // A reply without a body writer, into `out`: its head, and its body if
  // at most inline_body_max (a larger one goes as a buffer of its own).
  void head_and_small_body(std::string& out, const request& req, const reply& rep, bool keep_alive, bool head_only);
  static constexpr std::size_t inline_body_max = 4096;
  // _head_buffer's memory is kept while it is at most this (a head with
  // an inline body).
  static constexpr std::size_t head_buffer_kept_max = inline_body_max + 1024;
  future<> write_refusal(connection& c, int status, std::string_view reason);
  // The status line and fields; Content-Length only if `content_length`.
  void append_head(std::string& out, const request* req, const reply& rep, bool keep_alive,
                   std::optional<std::size_t> content_length, bool chunked);

  server_options _options;
  reply_head_writer _heads;
  std::string _head_buffer;  // where finish_request() writes a head
  routes _routes;
  std::list<server_socket> _listeners;  // a list: accept loops hold references
  std::list<connection*> _connections;
  gate _gate;
  semaphore _connection_slots;
  semaphore _body_memory;  // bytes of buffered request bodies
  server_stats _stats;
  // From a request's handler starting to its reply handed to the stream:
  // buckets from 1 µs by powers of two.
  metrics::histogram _latency_seconds = metrics::histogram::powers_of_two(24, 1e-6);
  metrics::metric_groups _metrics;
  bool _stopping = false;

  void register_metrics();
};

}  // namespace reef::http
