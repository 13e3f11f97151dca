// Every shard's metrics (core/metrics.h) in Prometheus' text exposition
// format 0.0.4, as a route any http_server can mount.
//
//   prometheus::add_route(server.get_routes());            // GET /metrics
//   curl 'http://127.0.0.1:10000/metrics?name=reef_http'   // a prefix filter
//
// Each metric is named "<prefix>_<group>_<name>" and each sample carries
// shard="N". Help text and label values are escaped as the format says;
// histograms give cumulative buckets up to le="+Inf", then _sum and
// _count.
//
// Thread rules: format() is pure; the route's handler runs on the shard
// that took the request and asks every shard (smp/metrics.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/future.h"
#include "core/metrics.h"
#include "http/routes.h"
#include "http/server.h"
#include "net/api.h"
#include "smp/sharded.h"

namespace reef::http::prometheus {

struct config {
  /// Prepended as "<prefix>_" to every metric's name ("" for none).
  std::string prefix = "reef";
  /// Where the route answers.
  std::string path = "/metrics";
};

/// `families` in the text format, each name prefixed as `c` says.
std::string format(const std::vector<metrics::family>& families, const config& c = {});

/// The escapes of the text format: a help text's "\" and newline; a label
/// value's "\", '"' and newline.
std::string escape_help(std::string_view text);
std::string escape_label_value(std::string_view text);

/// Adds GET `c.path` to `r`: every shard's metrics in the text format
/// (Content-Type "text/plain; version=0.0.4"). A query `name=P` keeps the
/// metrics whose exposed name starts with P. If the shards cannot be read
/// (they are stopping), 503. Throws as routes::add() does.
void add_route(routes& r, config c = {});

/// Starts `servers` (the caller stops them, also when this fails) on every
/// shard with `options` (whose metrics_name labels their own metrics) and
/// the route alone, listening on `address`: a port of the metrics' own, as
/// Seastar's 9180.
/// Resolves with the address it listens on (the port the kernel picked,
/// for port 0); fails as http_server::listen() does.
future<socket_address> serve_on_port(sharded<http_server>& servers, socket_address address,
                                     server_options options = {.metrics_name = "prometheus"}, config c = {});

}  // namespace reef::http::prometheus
