#include "http/prometheus.h"

#include <gtest/gtest.h>

#include <limits>

namespace reef::http::prometheus {
namespace {

using metrics::family;
using metrics::metric_kind;
using metrics::sample;

TEST(prometheus, counters_and_gauges_in_the_text_format) {
  std::vector<family> all = {
      family{"http_requests_total", "Requests served.", metric_kind::counter,
             {sample{{{"method", "GET"}, {"shard", "0"}}, 100, {}}, sample{{{"method", "GET"}, {"shard", "1"}}, 2, {}}}},
      family{"up", "Up.", metric_kind::gauge, {sample{{}, 1.5, {}}}},
  };
  EXPECT_EQ(format(all),
            "# HELP reef_http_requests_total Requests served.\n"
            "# TYPE reef_http_requests_total counter\n"
            "reef_http_requests_total{method=\"GET\",shard=\"0\"} 100\n"
            "reef_http_requests_total{method=\"GET\",shard=\"1\"} 2\n"
            "# HELP reef_up Up.\n"
            "# TYPE reef_up gauge\n"
            "reef_up 1.5\n");
  EXPECT_EQ(format({all[1]}, config{.prefix = ""}), "# HELP up Up.\n# TYPE up gauge\nup 1.5\n");
}

TEST(prometheus, help_and_label_values_are_escaped) {
  EXPECT_EQ(escape_help("a\\b\nc\"d"), "a\\\\b\\nc\"d");
  EXPECT_EQ(escape_label_value("a\\b\nc\"d"), "a\\\\b\\nc\\\"d");
  std::vector<family> all = {family{"x", "line one\nline \\two", metric_kind::gauge,
                                    {sample{{{"path", "/\"q\"\n"}}, 0, {}}}}};
  EXPECT_EQ(format(all, config{.prefix = ""}),
            "# HELP x line one\\nline \\\\two\n"
            "# TYPE x gauge\n"
            "x{path=\"/\\\"q\\\"\\n\"} 0\n");
}

TEST(prometheus, special_values) {
  std::vector<family> all = {family{"v", "v", metric_kind::gauge,
                                    {sample{{{"k", "a"}}, std::numeric_limits<double>::infinity(), {}},
                                     sample{{{"k", "b"}}, -std::numeric_limits<double>::infinity(), {}},
                                     sample{{{"k", "c"}}, std::numeric_limits<double>::quiet_NaN(), {}},
                                     sample{{{"k", "d"}}, 1e21, {}}, sample{{{"k", "e"}}, 0.25, {}}}}};
  EXPECT_EQ(format(all, config{.prefix = ""}),
            "# HELP v v\n# TYPE v gauge\n"
            "v{k=\"a\"} +Inf\nv{k=\"b\"} -Inf\nv{k=\"c\"} NaN\nv{k=\"d\"} 1e+21\nv{k=\"e\"} 0.25\n");
}

TEST(prometheus, histograms_give_cumulative_buckets_sum_and_count) {
  metrics::histogram h({1, 2.5});
  for (double v : {0.5, 2.0, 2.0, 10.0}) h.observe(v);
  std::vector<family> all = {
      family{"lat_us", "Latency.", metric_kind::histogram, {sample{{{"shard", "0"}}, 0, h.value()}}}};
  EXPECT_EQ(format(all, config{.prefix = ""}),
            "# HELP lat_us Latency.\n"
            "# TYPE lat_us histogram\n"
            "lat_us_bucket{shard=\"0\",le=\"1\"} 1\n"
            "lat_us_bucket{shard=\"0\",le=\"2.5\"} 3\n"
            "lat_us_bucket{shard=\"0\",le=\"+Inf\"} 4\n"
            "lat_us_sum{shard=\"0\"} 14.5\n"
            "lat_us_count{shard=\"0\"} 4\n");
}

}  // namespace
}  // namespace reef::http::prometheus
