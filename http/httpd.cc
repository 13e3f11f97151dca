// httpd: Reef's HTTP server, on every shard.
//
//   tools/bazel run //http:httpd                 # 127.0.0.1:10000, every CPU
//   tools/bazel run //http:httpd -- --smp 1 --port 8080
//
// Routes: GET / (what is here), GET /hello (a fixed small body: the
// benchmark route), GET /json (a small JSON document), POST /echo (the body
// back, streamed as it arrives: any size in bounded memory), GET /metrics
// (every shard's metrics for Prometheus; --prometheus-port P also serves
// them on a port of their own), and with --static-dir DIR, GET /file/...
// (the files under DIR). Takes every app_template flag (--smp, --cpuset,
// --reactor-backend, ...) plus --address, --port, --idle-timeout-ms,
// --header-timeout-ms, --body-timeout-ms, --send-timeout-ms,
// --max-connections, --static-dir, --prometheus-port and
// --io-properties-file, and the native stack's (--network-stack native
// --tap-device tap0 --host-ipv4-addr 10.0.0.2/24, or --dhcp: see
// tcpip/native_stack_flags.h). Logs one line when it starts serving and
// one when it has stopped (SIGINT or SIGTERM stops it gracefully).
#include <absl/flags/flag.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <utility>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/reactor.h"
#include "http/file_handler.h"
#include "http/prometheus.h"
#include "http/server.h"
#include "fs/io_flags.h"
#include "net/dns/dns_flags.h"
#include "net/posix_stack.h"
#include "net/stack.h"
#include "net/stack_flags.h"
#include "smp/app_template.h"
#include "smp/sharded.h"
#include "smp/smp.h"

ABSL_FLAG(std::string, address, "127.0.0.1", "the address to listen on (IPv4 or IPv6)");
ABSL_FLAG(int, port, 10000, "the port to listen on (0: one the kernel picks)");
ABSL_FLAG(int, idle_timeout_ms, 60'000, "close a connection that sends no request for this long");
ABSL_FLAG(int, header_timeout_ms, 10'000,
          "answer 408 and close when a request's head takes longer than this (slowloris)");
ABSL_FLAG(int, body_timeout_ms, 60'000, "answer 408 and close when a request's body takes longer than this");
ABSL_FLAG(int, send_timeout_ms, 60'000, "close a connection whose client leaves a reply untaken this long");
ABSL_FLAG(int, max_connections, 10'000, "connections served at once on each shard");
ABSL_FLAG(std::string, static_dir, "", "serve the files under this directory at /file/ (none: no /file/ route)");
ABSL_FLAG(int, prometheus_port, -1,
          "also serve GET /metrics on this port of --address (0: one the kernel picks; -1: none, /metrics on "
          "--port only)");

namespace reef::http {
namespace {

logger httpd_log("httpd");

void add_routes(routes& r, const std::string& static_dir) {
  if (!static_dir.empty()) r.add("GET", "/file/{path*}", serve_directory(static_dir));
  r.add("GET", "/", [](request&) {
    return reply().write_body("text/plain",
                              "Reef httpd. Routes: GET /hello, GET /json, POST /echo, GET /metrics.\n");
  });
  prometheus::add_route(r);
  // (Filling in the server's reply: a connection's replies reuse one.)
  r.add("GET", "/hello", [](request&, reply& rep) { rep.write_body("text/plain", "Hello, world!\n"); });
  r.add("GET", "/json", [](request&) {
    std::string body = R"({"message":"Hello, world!","server":"Reef","shard":)" +
                       std::to_string(this_shard_id()) + "}\n";
    return reply().write_body("application/json", std::move(body));
  });
  // The body streams back as it arrives: any size, in bounded memory.
  r.add_streaming("POST", "/echo", [](request& req) {
    std::string type(req.headers.get_or("content-type", "application/octet-stream"));
    auto copy = [&req](output_stream<char>& out) -> future<> {
      for (;;) {
        auto piece = co_await req.body_stream().read();
        if (piece.empty()) co_return;
        co_await out.write(std::move(piece));
      }
    };
    if (req.content_length) return reply().write_body(type, std::move(copy), *req.content_length);
    return reply().write_body(type, std::move(copy));
  });
}

future<int> run_httpd() {
  int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    httpd_log.error("--port {}: not a port (0-65535)", port);
    co_return 2;
  }
  const int prometheus_port = absl::GetFlag(FLAGS_prometheus_port);
  if (prometheus_port < -1 || prometheus_port > 65535 || (prometheus_port > 0 && prometheus_port == port)) {
    // (The same port twice would not fail: both listen with SO_REUSEPORT,
    // and the kernel would split the clients between them.)
    httpd_log.error("--prometheus-port {}: not a port (0-65535, or -1 for none) other than --port", prometheus_port);
    co_return 2;
  }
  socket_address address;
  try {
    address = socket_address(inet_address::parse(absl::GetFlag(FLAGS_address)), static_cast<std::uint16_t>(port));
  } catch (const std::invalid_argument& e) {
    httpd_log.error("--address: {}", e.what());
    co_return 2;
  }
  server_options options;
  for (auto [flag, value] : {std::pair{"--idle-timeout-ms", absl::GetFlag(FLAGS_idle_timeout_ms)},
                             std::pair{"--header-timeout-ms", absl::GetFlag(FLAGS_header_timeout_ms)},
                             std::pair{"--body-timeout-ms", absl::GetFlag(FLAGS_body_timeout_ms)},
                             std::pair{"--send-timeout-ms", absl::GetFlag(FLAGS_send_timeout_ms)},
                             std::pair{"--max-connections", absl::GetFlag(FLAGS_max_connections)}}) {
    if (value <= 0) {
      httpd_log.error("{} {}: must be positive", flag, value);
      co_return 2;
    }
  }
  options.idle_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_idle_timeout_ms));
  options.header_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_header_timeout_ms));
  options.body_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_body_timeout_ms));
  options.send_timeout = std::chrono::milliseconds(absl::GetFlag(FLAGS_send_timeout_ms));
  options.connections_max = static_cast<std::size_t>(absl::GetFlag(FLAGS_max_connections));
  const std::string static_dir = absl::GetFlag(FLAGS_static_dir);
  if (!static_dir.empty()) {
    struct stat st {};
    if (::stat(static_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      httpd_log.error("--static-dir {}: not a directory", static_dir);
      co_return 2;
    }
  }
  sharded<http_server> servers;
  co_await servers.start(options);
  // The metrics' own port, if asked for.
  sharded<http_server> metrics_servers;
  socket_address metrics_address;
  std::exception_ptr failed;
  try {
    if (prometheus_port >= 0) {
      server_options metrics_options = options;
      metrics_options.metrics_name = "prometheus";
      metrics_address = co_await prometheus::serve_on_port(
          metrics_servers, socket_address(address.address(), static_cast<std::uint16_t>(prometheus_port)),
          metrics_options);
    }
    co_await servers.invoke_on_all([static_dir](http_server& s) { add_routes(s.get_routes(), static_dir); });
    // Shard 0 first, so that a port the kernel picks is the one every
    // shard then shares.
    co_await servers.local().listen(address);
    address = servers.local().listening_addresses().front();
    co_await servers.invoke_on_all([address](http_server& s) {
      return this_shard_id() == 0 ? make_ready_future<>() : s.listen(address);
    });
    // (On the native stack with --dhcp: serving once it has an address.)
    co_await this_shard_network_stack().ready();
    address = servers.local().listening_addresses().front();
  } catch (...) {
    failed = std::current_exception();
  }
  if (failed) {
    try {
      std::rethrow_exception(failed);
    } catch (const std::exception& e) {
      httpd_log.error("cannot serve on {}: {}", address, e.what());
    }
    co_await servers.stop();
    if (prometheus_port >= 0) co_await metrics_servers.stop();
    co_return 1;
  }
  httpd_log.info("serving on http://{}/ with {} shard(s), reactor backend {}", address, smp::count,
                 engine().io().name());
  if (prometheus_port >= 0) httpd_log.info("metrics on http://{}/metrics", metrics_address);
  co_await app_template::stop_signal();
  httpd_log.info("stopping: no new connections; finishing the requests in flight");
  // What each shard served (flows are spread over shards by the stack).
  std::vector<server_stats> served = co_await servers.map([](http_server& s) { return s.stats(); });
  for (unsigned shard = 0; shard < served.size(); ++shard) {
    httpd_log.info("shard {} served {} requests on {} connections", shard, served[shard].requests_served,
                   served[shard].connections_accepted);
  }
  co_await servers.stop();
  if (prometheus_port >= 0) co_await metrics_servers.stop();
  httpd_log.info("stopped ({} shard(s), {})", smp::count, address);
  co_return 0;
}

}  // namespace
}  // namespace reef::http

int main(int argc, char** argv) {
  reef::app_template app({.name = "httpd",
                          .description = "Reef's HTTP/1.1 server: GET /, /hello, /json; POST /echo."});
  return app.run(argc, argv, [] { return reef::http::run_httpd(); });
}
