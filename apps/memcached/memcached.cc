// memcached: a memcached-compatible cache server on Reef, its items in a
// log-structured, compacting allocator (memory/lsa.h), every shard serving.
//
//   tools/bazel run //apps/memcached -- -p 11211            # TCP 11211, every CPU
//   tools/bazel run //apps/memcached -- -p 11211 -U 11211 -t 2 -m 1024
//
// memcached's flags where they mean the same: -p/--port, -U/--udp-port
// (0: no UDP, the default), -l/--listen, -m/--memory-limit-mb (total, split
// evenly over the shards), -c/--conn-limit, -I/--max-item-size (1m), and
// -t/--threads, which is --smp; plus every app_template flag (--cpuset,
// --reactor-backend, ...), --idle-timeout (seconds; 0: never) and
// --prometheus-port (GET /metrics on that port of the listen address, as
// Seastar's 9180; -1, the default: none). Logs one line when it serves and
// one when it has stopped (SIGINT or SIGTERM).
#include <absl/flags/flag.h>

#include <algorithm>
#include <string>
#include <vector>

#include "apps/memcached/options.h"
#include "apps/memcached/server.h"
#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "http/prometheus.h"
#include "http/server.h"
#include "memory/lsa.h"
#include "net/stack.h"
#include "smp/app_template.h"
#include "smp/sharded.h"
#include "smp/smp.h"

ABSL_FLAG(int, port, 11211, "-p: the TCP port to listen on (0: one the kernel picks)");
ABSL_FLAG(int, udp_port, 0, "-U: the UDP port to listen on (0: no UDP, as memcached 1.6)");
ABSL_FLAG(std::string, listen, "127.0.0.1", "-l: the address to listen on (IPv4 or IPv6)");
ABSL_FLAG(int, memory_limit_mb, 64, "-m: memory for items, in MiB, split evenly over the shards");
ABSL_FLAG(int, conn_limit, 1024, "-c: connections at once (split evenly over the shards)");
ABSL_FLAG(std::string, max_item_size, "1m", "-I: the largest item (key, value and bookkeeping): 1m, 512k, ...");
ABSL_FLAG(int, idle_timeout, 0, "close a connection idle this many seconds (0: never)");
ABSL_FLAG(int, prometheus_port, -1,
          "serve GET /metrics (Prometheus) on this port of the listen address (0: one the kernel picks; -1: none)");

namespace reef::memcached {
namespace {

logger main_log("memcached");

future<int> run_memcached() {
  const int port = absl::GetFlag(FLAGS_port);
  const int udp_port = absl::GetFlag(FLAGS_udp_port);
  for (auto [flag, value] : {std::pair{"--port", port}, std::pair{"--udp-port", udp_port}}) {
    if (value < 0 || value > 65535) {
      main_log.error("{} {}: not a port (0-65535)", flag, value);
      co_return 2;
    }
  }
  const int prometheus_port = absl::GetFlag(FLAGS_prometheus_port);
  if (prometheus_port < -1 || prometheus_port > 65535 || (prometheus_port > 0 && prometheus_port == port)) {
    // (The same port twice would not fail: both listen with SO_REUSEPORT,
    // and the kernel would split the clients between them.)
    main_log.error("--prometheus-port {}: not a port (0-65535, or -1 for none) other than --port", prometheus_port);
    co_return 2;
  }
  inet_address address;
  try {
    address = inet_address::parse(absl::GetFlag(FLAGS_listen));
  } catch (const std::invalid_argument& e) {
    main_log.error("--listen: {}", e.what());
    co_return 2;
  }
  const int memory_mb = absl::GetFlag(FLAGS_memory_limit_mb);
  const int conn_limit = absl::GetFlag(FLAGS_conn_limit);
  const int idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  if (memory_mb <= 0 || conn_limit <= 0 || idle_timeout < 0) {
    main_log.error("--memory-limit-mb {}, --conn-limit {}: must be positive; --idle-timeout {}: not negative",
                   memory_mb, conn_limit, idle_timeout);
    co_return 2;
  }
  const auto item_size = parse_size(absl::GetFlag(FLAGS_max_item_size));
  const std::size_t memory_bytes = static_cast<std::size_t>(memory_mb) << 20;
  // memcached's bounds: at least 1 KiB, at most 1 GiB and half the memory.
  if (!item_size || *item_size < 1024 || *item_size > (std::size_t{1} << 30) || *item_size > memory_bytes / 2) {
    main_log.error("--max-item-size {}: must be a size from 1k to 1g and at most half of --memory-limit-mb",
                   absl::GetFlag(FLAGS_max_item_size));
    co_return 2;
  }
  server_config config;
  config.memory_bytes_per_shard = memory_bytes / smp::count;
  config.item_size_max = *item_size;
  config.connections_max_total = static_cast<std::size_t>(conn_limit);
  config.connections_max_per_shard = std::max<std::size_t>(1, static_cast<std::size_t>(conn_limit) / smp::count);
  config.idle_timeout = std::chrono::seconds(idle_timeout);
  config.udp_port = static_cast<std::uint16_t>(udp_port);
  config.listen_text = absl::GetFlag(FLAGS_listen);

  sharded<memcached_server> servers;
  sharded<http::http_server> metrics_servers;
  socket_address metrics_address;
  socket_address tcp(address, static_cast<std::uint16_t>(port));
  socket_address udp(address, static_cast<std::uint16_t>(udp_port));
  std::exception_ptr failed;
  try {
    co_await servers.start(config);
    co_await servers.invoke_on_all([&servers](memcached_server& s) {
      s.set_peers(servers);
      // Allocations anywhere on the shard that run short take memory back
      // from the items (compaction, then eviction) rather than failing.
      memory::lsa::install_shard_reclaimer();
    });
    // Shard 0 first, so that a port the kernel picks is the one every
    // shard then shares.
    co_await servers.local().listen(tcp);
    tcp = servers.local().listening_addresses().front();
    co_await servers.invoke_on_all([tcp](memcached_server& s) {
      return this_shard_id() == 0 ? make_ready_future<>() : s.listen(tcp);
    });
    if (udp_port != 0) co_await servers.local().listen_udp(udp);
    if (prometheus_port >= 0) {
      metrics_address = co_await http::prometheus::serve_on_port(
          metrics_servers, socket_address(address, static_cast<std::uint16_t>(prometheus_port)));
    }
    co_await this_shard_network_stack().ready();
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    try {
      std::rethrow_exception(failed);
    } catch (const std::exception& e) {
      main_log.error("cannot serve on {}: {}", tcp, e.what());
    }
    co_await metrics_servers.stop();
    co_await servers.stop();
    co_return 1;
  }
  if (udp_port != 0) {
    main_log.info("serving memcached on tcp {} and udp {} with {} shard(s), {} MiB, reactor backend {}", tcp,
                  servers.local().udp_address(), smp::count, memory_mb, engine().io().name());
  } else {
    main_log.info("serving memcached on tcp {} with {} shard(s), {} MiB, reactor backend {}", tcp, smp::count,
                  memory_mb, engine().io().name());
  }
  if (prometheus_port >= 0) main_log.info("metrics on http://{}/metrics", metrics_address);
  co_await app_template::stop_signal();
  main_log.info("stopping");
  co_await metrics_servers.stop();
  co_await servers.stop();
  main_log.info("stopped");
  co_return 0;
}

}  // namespace
}  // namespace reef::memcached

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  args = reef::memcached::translate_memcached_flags(args);
  std::vector<char*> translated;
  for (auto& a : args) translated.push_back(a.data());
  translated.push_back(nullptr);
  reef::app_template app({.name = "memcached",
                          .description = "A memcached-compatible cache server: memcached 1.6's ASCII and meta "
                                         "protocols over TCP and UDP."});
  return app.run(static_cast<int>(args.size()), translated.data(), [] { return reef::memcached::run_memcached(); });
}
