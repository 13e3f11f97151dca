// The memcached server: one instance per shard (sharded<memcached_server>),
// each with its part of the cache (cache.h), its TCP connections, and on
// shard 0 the UDP port.
//
//   sharded<memcached_server> servers;
//   co_await servers.start(server_config{...});
//   co_await servers.invoke_on_all([&](memcached_server& s) { s.set_peers(servers); });
//   co_await servers.invoke_on_all([&](memcached_server& s) { return s.listen(address); });
//   co_await servers.local().listen_udp(udp_address);    // shard 0
//   ...
//   co_await servers.stop();   // each instance's stop() first
//
// A connection is served by the shard that accepted it. Each command runs
// on its key's shard (shard_of(key_hash(key))): at once when that is this
// shard, otherwise through smp::submit_to, whose reply comes back in a
// foreign_ptr and goes to the socket without a copy (a large one) or
// appended (a short one). A multi-key get asks every shard that holds its
// keys at once and replies in the order asked; flush_all and stats go to
// every shard.
//
// Memory: every connection reads its next requests only after the replies
// to the last ones were taken by the socket, so a client that does not
// read its replies holds at most one batch of them; a multi-key get is
// answered in batches of keys for the same reason.
//
// Thread rules: an instance belongs to its shard; stop() before it is
// destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "apps/memcached/cache.h"
#include "apps/memcached/protocol.h"
#include "core/future.h"
#include "core/gate.h"
#include "core/metrics.h"
#include "core/timer.h"
#include "net/api.h"
#include "smp/sharded.h"

namespace reef::memcached {

struct server_config {
  /// Each shard's share of -m, in bytes.
  std::size_t memory_bytes_per_shard = 64 << 20;
  /// -I: the largest item.
  std::size_t item_size_max = 1 << 20;
  /// -c: connections at once, on each shard (a connection past it is told
  /// "ERROR Too many open connections" and closed, as memcached does).
  std::size_t connections_max_per_shard = 1024;
  /// Close a connection idle this long (0: never, memcached's default).
  std::chrono::seconds idle_timeout{0};
  /// What "stats settings" reports.
  std::size_t connections_max_total = 1024;
  std::uint16_t tcp_port = 0;
  std::uint16_t udp_port = 0;
  std::string listen_text;
  unsigned verbosity = 0;
};

/// Connection counters, per shard.
struct connection_stats {
  std::uint64_t curr_connections = 0;
  std::uint64_t total_connections = 0;
  std::uint64_t rejected_connections = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t udp_datagrams = 0;

  connection_stats& operator+=(const connection_stats& o) noexcept;
};

class memcached_server {
 public:
  explicit memcached_server(server_config config);
  ~memcached_server();
  memcached_server(const memcached_server&) = delete;
  memcached_server& operator=(const memcached_server&) = delete;

  /// The instances of every shard, for running commands on a key's shard.
  /// Call on every shard before listening.
  void set_peers(sharded<memcached_server>& peers) noexcept { _peers = &peers; }

  /// Serves TCP connections at `address` (every shard may listen on the
  /// same one; the kernel spreads connections). Fails (std::system_error
  /// naming the call) if it cannot.
  future<> listen(socket_address address);
  /// Serves UDP datagrams at `address` (memcached's frame header). One
  /// shard serves UDP.
  future<> listen_udp(socket_address address);
  std::vector<socket_address> listening_addresses() const;
  socket_address udp_address() const;

  /// Stops accepting, closes every connection (requests in flight finish)
  /// and the UDP channel, and resolves when all are gone.
  future<> stop();

  cache& local_cache() noexcept { return _cache; }
  const connection_stats& connections() const noexcept { return _connection_stats; }
  const server_config& config() const noexcept { return _config; }

 private:
  struct connection;
  struct reply_queue;

  future<> accept_loop(server_socket& listener);
  future<> serve(connected_socket socket);
  future<> refuse(connected_socket socket);
  future<> udp_loop();
  future<> serve_datagram(udp_datagram d);
  // Runs one parsed request, appending its reply.
  future<> run(const request& req, std::string_view data, reply_queue& out);
  future<> run_keyed(const request& req, std::string_view data, reply_queue& out);
  future<> run_retrieval(const request& req, reply_queue& out);
  future<> retrieve_in_batches(const request& req, reply_queue& out);
  future<> run_stats(const request& req, reply_queue& out);
  void tick() noexcept;
  // Wall-clock ms, from the reactor's clock and a base the tick renews.
  std::uint64_t clock_ms() const noexcept;

  server_config _config;
  cache _cache;
  sharded<memcached_server>* _peers = nullptr;
  std::list<server_socket> _listeners;  // (a list: accept loops hold references)
  udp_channel _udp;
  socket_address _udp_address;
  std::list<connection*> _connection_list;
  std::size_t _connections_open = 0;
  gate _gate;
  timer<lowres_clock> _clock;  // renews the clock's base; runs the expiry sweep
  std::uint64_t _wall_base_ms = 0;
  lowres_clock::time_point _lowres_base;
  connection_stats _connection_stats;
  std::chrono::steady_clock::time_point _started = std::chrono::steady_clock::now();
  bool _stopping = false;
  metrics::metric_groups _metrics;  // (last: removed before what it reads)

  void register_metrics();
};

}  // namespace reef::memcached
