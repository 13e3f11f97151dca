#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace reef::metrics {
namespace {

// The message of the std::invalid_argument that `f` throws ("" if none).
template <typename F>
std::string refusal(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(metrics, counters_and_gauges_read_their_owner_at_each_read) {
  std::uint64_t hits = 0;
  double level = 2.5;
  metric_groups g;
  g.add_group("cache", {
                           make_counter("hits_total", "Lookups that found their key.", hits),
                           make_gauge("level", "A level.", [&] { return level; }),
                       });
  EXPECT_EQ(registered(), 2u);
  hits = 7;
  level = -1;
  auto all = read_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "cache_hits_total");  // sorted by name
  EXPECT_EQ(all[0].kind, metric_kind::counter);
  EXPECT_EQ(all[0].help, "Lookups that found their key.");
  ASSERT_EQ(all[0].samples.size(), 1u);
  EXPECT_EQ(all[0].samples[0].value, 7);
  EXPECT_EQ(all[1].name, "cache_level");
  EXPECT_EQ(all[1].samples[0].value, -1);
  hits += 100;
  EXPECT_EQ(read_all("cache_hits")[0].samples[0].value, 107);
  EXPECT_TRUE(read_all("cache_x").empty());
}

TEST(metrics, an_owner_takes_its_metrics_with_it) {
  std::uint64_t n = 1;
  {
    metric_groups g;
    g.add_group("a", {make_counter("x_total", "x", n)});
    metric_groups h;
    h.add_group("b", {make_counter("y_total", "y", n)});
    EXPECT_EQ(registered(), 2u);
    h.clear();
    EXPECT_EQ(registered(), 1u);
    EXPECT_EQ(read_all().size(), 1u);
  }
  EXPECT_EQ(registered(), 0u);
  EXPECT_TRUE(read_all().empty());
}

TEST(metrics, one_name_many_label_sets) {
  std::uint64_t get = 3, put = 4;
  metric_groups g;
  g.add_group("http", {
                          make_counter("requests_total", "Requests.", get, {{"method", "GET"}}),
                          make_counter("requests_total", "Requests.", put, {{"method", "PUT"}}),
                      });
  auto all = read_all();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(all[0].samples.size(), 2u);
  EXPECT_EQ(all[0].samples[0].labels, (labels{{"method", "GET"}}));
  EXPECT_EQ(all[0].samples[1].value, 4);
  // Another owner may add a label set of its own to the same name.
  metric_groups other;
  std::uint64_t post = 5;
  other.add_group("http", {make_counter("requests_total", "Requests.", post, {{"method", "POST"}})});
  EXPECT_EQ(read_all()[0].samples.size(), 3u);
}

TEST(metrics, bad_names_labels_and_duplicates_are_refused_naming_them) {
  std::uint64_t n = 0;
  metric_groups g;
  EXPECT_NE(refusal([&] { g.add_group("cache", {make_counter("hits-total", "x", n)}); }).find("\"cache_hits-total\""),
            std::string::npos);
  EXPECT_NE(refusal([&] { g.add_group("9lives", {make_counter("x", "x", n)}); }).find("not a valid metric name"),
            std::string::npos);
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x", "x", n, {{"bad label", "v"}})}); })
                .find("\"bad label\" is not a valid label name"),
            std::string::npos);
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x", "x", n, {{"__reserved", "v"}})}); }), "");
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x", "x", n, {{"shard", "1"}})}); }).find("collector"),
            std::string::npos);
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x", "x", n, {{"k", "1"}, {"k", "2"}})}); }), "");
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x", "x", std::function<double()>())}); })
                .find("has no reader"),
            std::string::npos);
  histogram h({1, 2});
  EXPECT_NE(refusal([&] { g.add_group("a", {make_histogram("h", "h", h, {{"le", "1"}})}); }), "");
  // Label values may hold anything: the exposition escapes them.
  g.add_group("a", {make_counter("x_total", "x", n, {{"path", "/a\"b\\c\nd"}})});
  // A duplicate, in one call or across calls, registers nothing of its call.
  EXPECT_NE(refusal([&] { g.add_group("a", {make_counter("x_total", "x", n, {{"path", "/a\"b\\c\nd"}})}); })
                .find("already registered"),
            std::string::npos);
  EXPECT_NE(refusal([&] {
              g.add_group("b", {make_counter("ok_total", "x", n), make_counter("ok_total", "x", n)});
            }).find("given twice"),
            std::string::npos);
  EXPECT_NE(refusal([&] { g.add_group("a", {make_gauge("x_total", "x", n, {{"path", "other"}})}); })
                .find("another kind or help"),
            std::string::npos);
  EXPECT_EQ(registered(), 1u);
  EXPECT_EQ(read_all("b").size(), 0u);
}

// A reader of a temporary would dangle: those registrations do not compile.
template <typename T>
concept counter_reads = requires(T&& v) { make_counter("x_total", "x", std::forward<T>(v)); };
template <typename T>
concept histogram_reads = requires(T&& v) { make_histogram("x", "x", std::forward<T>(v)); };
static_assert(counter_reads<std::uint64_t&>);
static_assert(!counter_reads<std::uint64_t>);
static_assert(!counter_reads<std::uint32_t&>);  // would read a converted copy
static_assert(histogram_reads<histogram&>);
static_assert(!histogram_reads<histogram>);

TEST(metrics, is_registered_by_name_and_labels) {
  std::uint64_t n = 0;
  metric_groups g;
  g.add_group("http", {make_counter("x_total", "x", n, {{"server", "a"}, {"k", "v"}})});
  EXPECT_TRUE(is_registered("http_x_total", {{"k", "v"}, {"server", "a"}}));  // in any order
  EXPECT_FALSE(is_registered("http_x_total", {{"server", "a"}}));
  EXPECT_FALSE(is_registered("http_y_total", {}));
  g.clear();
  EXPECT_FALSE(is_registered("http_x_total", {{"k", "v"}, {"server", "a"}}));
}

TEST(metrics, name_rules) {
  EXPECT_TRUE(valid_metric_name("a_b:c9"));
  EXPECT_TRUE(valid_metric_name(":a"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_FALSE(valid_metric_name("9a"));
  EXPECT_FALSE(valid_metric_name("a.b"));
  EXPECT_FALSE(valid_metric_name("é"));
  EXPECT_TRUE(valid_label_name("_a1"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_FALSE(valid_label_name("__a"));
  EXPECT_FALSE(valid_label_name("1a"));
}

TEST(metrics, histogram_buckets_are_cumulative_up_to_inf) {
  histogram h = histogram::powers_of_two(4);  // 1, 2, 4, 8
  for (double v : {0.5, 1.0, 1.5, 3.0, 8.0, 9.0, 1000.0}) h.observe(v);
  histogram_value v = h.value();
  EXPECT_EQ(v.upper_bounds, (std::vector<double>{1, 2, 4, 8}));
  // <=1: 0.5, 1; <=2: +1.5; <=4: +3; <=8: +8; +Inf: +9, +1000.
  EXPECT_EQ(v.cumulative_counts, (std::vector<std::uint64_t>{2, 3, 4, 5, 7}));
  EXPECT_EQ(v.count, 7u);
  EXPECT_DOUBLE_EQ(v.sum, 0.5 + 1 + 1.5 + 3 + 8 + 9 + 1000);
  metric_groups g;
  g.add_group("rpc", {make_histogram("latency_us", "Latency.", h)});
  auto all = read_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].kind, metric_kind::histogram);
  EXPECT_EQ(all[0].samples[0].histogram.cumulative_counts.back(), 7u);
}

// powers_of_two() finds buckets from the binary exponent: the same counts
// as the binary search over the same bounds, for values at, just around
// and between the bounds, beyond both ends, and not numbers.
TEST(metrics, powers_of_two_buckets_match_a_search_of_the_bounds) {
  for (double first : {1.0, 1e-6, 0.3, 3e-9}) {
    histogram fast = histogram::powers_of_two(24, first);
    histogram searched(fast.value().upper_bounds);  // the same bounds, given
    std::vector<double> values = {0, -1, first / 3, std::nan(""), HUGE_VAL, -HUGE_VAL};
    for (double b : fast.value().upper_bounds) {
      values.insert(values.end(), {b, std::nextafter(b, 0.0), std::nextafter(b, HUGE_VAL), b * 1.5, b * 0.75});
    }
    std::uint64_t state = 42;
    for (int i = 0; i < 10'000; ++i) {
      state = state * 6364136223846793005u + 1442695040888963407u;
      values.push_back(first * std::ldexp(static_cast<double>(state >> 11) / 9007199254740992.0, (i % 30) - 2));
    }
    for (double v : values) {
      fast.observe(v);
      searched.observe(v);
    }
    EXPECT_EQ(fast.value().cumulative_counts, searched.value().cumulative_counts) << "first " << first;
  }
}

TEST(metrics, histogram_bounds_must_increase_and_be_finite) {
  EXPECT_THROW(histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(histogram(std::vector<double>(histogram::buckets_max + 1, 0)), std::invalid_argument);
  histogram none({});  // everything in +Inf
  none.observe(5);
  EXPECT_EQ(none.value().cumulative_counts, (std::vector<std::uint64_t>{1}));
}

TEST(metrics, a_reader_that_throws_leaves_its_sample_out) {
  std::uint64_t n = 1;
  metric_groups g;
  g.add_group("a", {make_gauge("bad", "x", [] () -> double { throw std::runtime_error("no"); }),
                    make_counter("good_total", "x", n)});
  auto all = read_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "a_good_total");
}

TEST(metrics, each_thread_has_its_own_registry) {
  std::uint64_t n = 1;
  metric_groups g;
  g.add_group("here", {make_counter("x_total", "x", n)});
  std::size_t there = 99;
  std::thread t([&] {
    metric_groups mine;
    mine.add_group("there", {make_counter("x_total", "x", n)});
    there = read_all().size();
  });
  t.join();
  EXPECT_EQ(there, 1u);
  ASSERT_EQ(read_all().size(), 1u);
  EXPECT_EQ(read_all()[0].name, "here_x_total");
}

}  // namespace
}  // namespace reef::metrics
