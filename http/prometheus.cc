#include "http/prometheus.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "core/coroutine.h"
#include "core/log.h"
#include "smp/metrics.h"
#include "smp/smp.h"

namespace reef::http::prometheus {

namespace {

logger prometheus_log("prometheus");

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char text[32];
    out.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), v).ptr - text));
  }
}

// `{a="x",b="y"}` with one more label at the end (for a bucket's "le"),
// or nothing when there are no labels.
void append_labels(std::string& out, const metrics::labels& labels, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  auto one = [&](std::string_view name, std::string_view value) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  };
  for (const auto& [name, value] : labels) one(name, value);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out += '}';
}

std::string_view kind_word(metrics::metric_kind k) noexcept {
  switch (k) {
    case metrics::metric_kind::counter:
      return "counter";
    case metrics::metric_kind::gauge:
      return "gauge";
    case metrics::metric_kind::histogram:
      return "histogram";
  }
  return "untyped";
}

// The exposition's escaping: backslash and newline always, the double
// quote in label values.
std::string escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string escape_help(std::string_view text) { return escape(text, false); }

std::string escape_label_value(std::string_view text) { return escape(text, true); }

std::string format(const std::vector<metrics::family>& families, const config& c) {
  std::string out;
  for (const metrics::family& f : families) {
    const std::string name = c.prefix.empty() ? f.name : c.prefix + "_" + f.name;
    out += "# HELP ";
    out += name;
    out += ' ';
    out += escape_help(f.help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += kind_word(f.kind);
    out += '\n';
    for (const metrics::sample& s : f.samples) {
      if (f.kind != metrics::metric_kind::histogram) {
        out += name;
        append_labels(out, s.labels);
        out += ' ';
        append_number(out, s.value);
        out += '\n';
        continue;
      }
      const metrics::histogram_value& h = s.histogram;
      for (std::size_t i = 0; i < h.cumulative_counts.size(); ++i) {
        std::string bound;
        if (i < h.upper_bounds.size()) {
          append_number(bound, h.upper_bounds[i]);
        } else {
          bound = "+Inf";
        }
        out += name;
        out += "_bucket";
        append_labels(out, s.labels, "le", bound);
        out += ' ';
        append_number(out, static_cast<double>(h.cumulative_counts[i]));
        out += '\n';
      }
      out += name;
      out += "_sum";
      append_labels(out, s.labels);
      out += ' ';
      append_number(out, h.sum);
      out += '\n';
      out += name;
      out += "_count";
      append_labels(out, s.labels);
      out += ' ';
      append_number(out, static_cast<double>(h.count));
      out += '\n';
    }
  }
  return out;
}

namespace {

future<reply> serve(const config& c, request& req) {
  // The filter is on the exposed name; the registries know names without
  // the prefix.
  std::string wanted = req.query_param("name").value_or("");
  const std::string prefix = c.prefix.empty() ? std::string() : c.prefix + "_";
  std::string registry_prefix;
  if (wanted.size() >= prefix.size()) {
    if (wanted.compare(0, prefix.size(), prefix) != 0) co_return reply().write_body("text/plain; version=0.0.4", "");
    registry_prefix = wanted.substr(prefix.size());
  } else if (prefix.compare(0, wanted.size(), wanted) != 0) {
    co_return reply().write_body("text/plain; version=0.0.4", "");
  }
  std::vector<metrics::family> families;
  try {
    families = co_await metrics::collect_all_shards(std::move(registry_prefix));
  } catch (const std::exception& e) {
    prometheus_log.warn("scrape failed: {}", e.what());
    co_return reply::of(503);
  }
  co_return reply().write_body("text/plain; version=0.0.4", format(families, c));
}

}  // namespace

void add_route(routes& r, config c) {
  const std::string path = c.path;
  r.add("GET", path, [c = std::move(c)](request& req) { return serve(c, req); });
}

future<socket_address> serve_on_port(sharded<http_server>& servers, socket_address address, server_options options,
                                     config c) {
  co_await servers.start(options);
  co_await servers.invoke_on_all([c](http_server& s) { add_route(s.get_routes(), c); });
  // Shard 0 first, so that a port the kernel picks is the one every shard
  // then shares.
  co_await servers.local().listen(address);
  address = servers.local().listening_addresses().front();
  co_await servers.invoke_on_all(
      [address](http_server& s) { return this_shard_id() == 0 ? make_ready_future<>() : s.listen(address); });
  co_return address;
}

}  // namespace reef::http::prometheus
