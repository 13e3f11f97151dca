// Metrics: what a shard's components count, read only when someone asks.
//
//   struct cache {
//     std::uint64_t hits = 0;                        // the fast path: ++hits
//     metrics::histogram latency = metrics::histogram::powers_of_two(20, 1e-6);  // from 1 µs, in s
//     metrics::metric_groups metrics;                // removes them with the cache
//     cache() {
//       metrics.add_group("cache", {
//           metrics::make_counter("hits_total", "Lookups that found their key.", hits),
//           metrics::make_gauge("items", "Items held.", [this] { return double(items()); }),
//           metrics::make_histogram("latency_seconds", "Lookup latency.", latency),
//       });
//     }
//   };
//
// An owner keeps its own plain integers (or a histogram) and registers
// metrics that read them: nothing is shared and nothing is atomic, and a
// scrape reads the values on the owner's shard (smp/metrics.h walks the
// shards). A metric's full name is "<group>_<name>"; names and label names
// follow Prometheus' rules and are checked when registered, label values
// may hold anything (the exposition escapes them). Registration fails with
// std::invalid_argument naming the bad name, label, or duplicate.
//
// Thread rules: each thread (shard) has its own registry; a metric_groups
// is registered with, read on, and destroyed on the thread that created
// it. The readers it holds are called there, at each read_all(), and are
// destroyed with it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace reef::core_internal {
struct metrics_registry;
}  // namespace reef::core_internal

namespace reef::metrics {

enum class metric_kind : std::uint8_t { counter, gauge, histogram };

/// Label name and value pairs, in the order given.
using labels = std::vector<std::pair<std::string, std::string>>;

/// A histogram's state as a scrape sees it: bucket upper bounds (the last,
/// +Inf, implied), cumulative counts per bound (one more than the bounds:
/// the last is the +Inf bucket, equal to `count`), the sum and count.
struct histogram_value {
  std::vector<double> upper_bounds;
  std::vector<std::uint64_t> cumulative_counts;
  double sum = 0;
  std::uint64_t count = 0;
};

/// Fixed buckets that an owner fills on its fast path: observe() finds the
/// bucket (from the value's binary exponent for powers_of_two(), a binary
/// search otherwise) and makes three additions, no allocation.
class histogram {
 public:
  /// Buckets with these upper bounds, strictly increasing and finite (a
  /// value above the last goes to +Inf). Throws std::invalid_argument
  /// otherwise, or for more than `buckets_max` bounds.
  explicit histogram(std::vector<double> upper_bounds);
  /// Bounds first, 2 first, 4 first, ..., 2^(buckets-1) first: sizes in
  /// bytes, or a latency in µs expressed in seconds (first = 1e-6), as
  /// Prometheus' names want their base units.
  static histogram powers_of_two(unsigned buckets, double first = 1);

  static constexpr std::size_t buckets_max = 128;

  /// Counts `value` in the first bucket whose bound is at least it.
  void observe(double value) noexcept {
    std::size_t i;
    if (_first > 0 && value > _first && value < _last) {
      // Bound i is first·2^i: value/first's binary exponent e (2^e <= x <
      // 2^(e+1)) names bucket e+1, give or take one for rounding at a
      // bound, which one comparison each way settles. (Not NaN, not beyond
      // the bounds: so 1 <= i <= n-1.)
      const double x = value * _inverse_first;
      const int e = static_cast<int>((std::bit_cast<std::uint64_t>(x) >> 52) & 0x7ff) - 1023;
      const int last = static_cast<int>(_upper_bounds.size()) - 1;
      i = static_cast<std::size_t>(e + 1 < 1 ? 1 : e + 1 > last ? last : e + 1);
      const double* bounds = _upper_bounds.data();
      if (value <= bounds[i - 1]) {
        --i;
      } else if (value > bounds[i]) {
        ++i;
      }
    } else {
      i = search(value);
    }
    ++_counts[i];
    _sum += value;
    ++_count;
  }

  histogram_value value() const;
  std::uint64_t count() const noexcept { return _count; }
  double sum() const noexcept { return _sum; }

 private:
  std::vector<double> _upper_bounds;
  std::vector<std::uint64_t> _counts;  // per bucket, the +Inf one last
  double _sum = 0;
  std::uint64_t _count = 0;
  std::size_t search(double value) const noexcept;

  // powers_of_two(): the first and last bounds and the first's inverse; 0
  // for other bounds.
  double _first = 0;
  double _last = 0;
  double _inverse_first = 0;
};

/// One metric as its owner declares it (see make_counter() and friends).
struct metric_definition {
  std::string name;
  std::string help;
  metric_kind kind = metric_kind::counter;
  metrics::labels labels;
  // One of the two, by kind; called on the owner's shard at each read.
  std::function<double()> read_number;
  std::function<histogram_value()> read_histogram;
};

/// A counter (only grows) read from `read()` at each scrape. Readers are
/// called on the registering shard and destroyed with the registration.
metric_definition make_counter(std::string name, std::string help, std::function<double()> read,
                               metrics::labels labels = {});
/// A counter that reads `value`.
/// REQUIRES: `value` outlives the registration (a temporary does not
/// compile).
metric_definition make_counter(std::string name, std::string help, const std::uint64_t& value,
                               metrics::labels labels = {});
metric_definition make_counter(std::string name, std::string help, const std::uint64_t&& value,
                               metrics::labels labels = {}) = delete;
/// A gauge (goes up and down) read from `read()` at each scrape.
metric_definition make_gauge(std::string name, std::string help, std::function<double()> read,
                             metrics::labels labels = {});
/// A gauge that reads `value`.
/// REQUIRES: `value` outlives the registration (a temporary does not
/// compile).
metric_definition make_gauge(std::string name, std::string help, const std::uint64_t& value,
                             metrics::labels labels = {});
metric_definition make_gauge(std::string name, std::string help, const std::uint64_t&& value,
                             metrics::labels labels = {}) = delete;
/// A histogram that reads `h`.
/// REQUIRES: `h` outlives the registration (a temporary does not compile).
metric_definition make_histogram(std::string name, std::string help, const histogram& h,
                                 metrics::labels labels = {});
metric_definition make_histogram(std::string name, std::string help, const histogram&& h,
                                 metrics::labels labels = {}) = delete;
/// A histogram read from `read()` at each scrape.
metric_definition make_histogram(std::string name, std::string help, std::function<histogram_value()> read,
                                 metrics::labels labels = {});

/// Prometheus' rules: a metric name is [a-zA-Z_:][a-zA-Z0-9_:]*; a label
/// name is [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__".
bool valid_metric_name(std::string_view name) noexcept;
bool valid_label_name(std::string_view name) noexcept;

/// The metrics one owner registered on this shard, removed when it is
/// destroyed (or cleared).
class metric_groups {
 public:
  metric_groups() = default;
  metric_groups(const metric_groups&) = delete;
  metric_groups& operator=(const metric_groups&) = delete;
  ~metric_groups();

  /// Registers `definitions` as "<group>_<name>" on this shard. Throws
  /// std::invalid_argument, registering none of them, for a bad name or
  /// label name, a label named "shard" (the collector adds it), a
  /// definition without its reader, or a full name and label set already
  /// registered on this shard (or registered with another kind or help).
  metric_groups& add_group(std::string_view group, std::vector<metric_definition> definitions);
  /// Removes everything this owner registered.
  void clear() noexcept;

 private:
  static void remove(core_internal::metrics_registry& r, const std::vector<std::uint64_t>& ids) noexcept;

  std::vector<std::uint64_t> _ids;
  core_internal::metrics_registry* _registry = nullptr;  // the thread's it registered with
};

/// Whether `full_name` ("<group>_<name>") with exactly these labels is
/// registered on this shard.
bool is_registered(std::string_view full_name, const metrics::labels& labels);

/// One sample: its labels and, by the family's kind, a number or a
/// histogram.
struct sample {
  metrics::labels labels;
  double value = 0;
  histogram_value histogram;
};

/// Every sample of one metric name.
struct family {
  std::string name;
  std::string help;
  metric_kind kind = metric_kind::counter;
  std::vector<sample> samples;
};

/// Reads every metric registered on this shard whose full name starts
/// with `name_prefix`: families sorted by name, samples in registration
/// order. A reader that throws leaves its sample out.
std::vector<family> read_all(std::string_view name_prefix = {});

/// How many metrics are registered on this shard.
std::size_t registered() noexcept;

}  // namespace reef::metrics
