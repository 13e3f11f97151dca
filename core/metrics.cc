#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "core/assert.h"

namespace reef::metrics {

// One registered metric.
struct entry {
  std::string name;  // full: "<group>_<name>"
  metric_definition definition;
};

}  // namespace reef::metrics

namespace reef::core_internal {

// A thread's metrics: the entries by id, and the ids of each full name
// (sorted, so that a scrape comes out in name order).
struct metrics_registry {
  std::uint64_t next_id = 1;
  std::unordered_map<std::uint64_t, metrics::entry> entries;
  std::map<std::string, std::vector<std::uint64_t>, std::less<>> by_name;
};

}  // namespace reef::core_internal

namespace reef::metrics {

namespace {

using registry = core_internal::metrics_registry;

// Set when this thread's registry is destroyed at thread exit: an owner
// destroyed after it (a thread_local of its own) has nothing to remove.
thread_local bool registry_gone = false;

struct registry_holder {
  registry r;
  ~registry_holder() { registry_gone = true; }
};

registry& local_registry() {
  REEF_ASSERT(!registry_gone, "metrics used on a thread after its registry was destroyed");
  thread_local registry_holder holder;
  return holder.r;
}

bool name_char(char c, bool first, bool colon) noexcept {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return letter || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view name, bool colon) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0, colon)) return false;
  }
  return true;
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

histogram::histogram(std::vector<double> upper_bounds) : _upper_bounds(std::move(upper_bounds)) {
  if (_upper_bounds.size() > buckets_max) {
    throw std::invalid_argument("metrics::histogram: " + std::to_string(_upper_bounds.size()) +
                                " bucket bounds, more than the " + std::to_string(buckets_max) + " allowed");
  }
  for (std::size_t i = 0; i < _upper_bounds.size(); ++i) {
    if (!std::isfinite(_upper_bounds[i]) || (i > 0 && _upper_bounds[i] <= _upper_bounds[i - 1])) {
      throw std::invalid_argument("metrics::histogram: bucket bounds must be finite and strictly increasing");
    }
  }
  _counts.assign(_upper_bounds.size() + 1, 0);
}

histogram histogram::powers_of_two(unsigned buckets, double first) {
  std::vector<double> bounds;
  double bound = first;
  for (unsigned i = 0; i < buckets; ++i, bound *= 2) bounds.push_back(bound);
  histogram h(std::move(bounds));
  if (buckets >= 2 && std::isfinite(1 / first)) {  // (then first > 0: the bounds increase)
    h._first = first;
    h._last = h._upper_bounds.back();
    h._inverse_first = 1 / first;
  }
  return h;
}

std::size_t histogram::search(double value) const noexcept {
  return static_cast<std::size_t>(std::lower_bound(_upper_bounds.begin(), _upper_bounds.end(), value) -
                                  _upper_bounds.begin());
}

histogram_value histogram::value() const {
  histogram_value v;
  v.upper_bounds = _upper_bounds;
  v.cumulative_counts.reserve(_counts.size());
  std::uint64_t total = 0;
  for (std::uint64_t c : _counts) v.cumulative_counts.push_back(total += c);
  v.sum = _sum;
  v.count = _count;
  return v;
}

namespace {

metric_definition number(std::string name, std::string help, metric_kind kind, std::function<double()> read,
                         metrics::labels labels) {
  metric_definition d;
  d.name = std::move(name);
  d.help = std::move(help);
  d.kind = kind;
  d.labels = std::move(labels);
  d.read_number = std::move(read);
  return d;
}

}  // namespace

metric_definition make_counter(std::string name, std::string help, std::function<double()> read,
                               metrics::labels labels) {
  return number(std::move(name), std::move(help), metric_kind::counter, std::move(read), std::move(labels));
}

metric_definition make_counter(std::string name, std::string help, const std::uint64_t& value,
                               metrics::labels labels) {
  return make_counter(std::move(name), std::move(help), [&value] { return static_cast<double>(value); },
                      std::move(labels));
}

metric_definition make_gauge(std::string name, std::string help, std::function<double()> read,
                             metrics::labels labels) {
  return number(std::move(name), std::move(help), metric_kind::gauge, std::move(read), std::move(labels));
}

metric_definition make_gauge(std::string name, std::string help, const std::uint64_t& value,
                             metrics::labels labels) {
  return make_gauge(std::move(name), std::move(help), [&value] { return static_cast<double>(value); },
                    std::move(labels));
}

metric_definition make_histogram(std::string name, std::string help, const histogram& h, metrics::labels labels) {
  return make_histogram(std::move(name), std::move(help), [&h] { return h.value(); }, std::move(labels));
}

metric_definition make_histogram(std::string name, std::string help, std::function<histogram_value()> read,
                                 metrics::labels labels) {
  metric_definition d;
  d.name = std::move(name);
  d.help = std::move(help);
  d.kind = metric_kind::histogram;
  d.labels = std::move(labels);
  d.read_histogram = std::move(read);
  return d;
}

bool valid_metric_name(std::string_view name) noexcept { return valid_name(name, true); }

bool valid_label_name(std::string_view name) noexcept {
  return valid_name(name, false) && name.substr(0, 2) != "__";
}

metric_groups::~metric_groups() { clear(); }

metric_groups& metric_groups::add_group(std::string_view group, std::vector<metric_definition> definitions) {
  registry& r = local_registry();
  REEF_ASSERT(_registry == nullptr || _registry == &r, "metric_groups used on another thread than its own");
  // Everything is checked before anything is registered.
  std::vector<entry> fresh;
  fresh.reserve(definitions.size());
  for (metric_definition& d : definitions) {
    std::string full = std::string(group) + "_" + d.name;
    if (!valid_metric_name(full)) {
      throw std::invalid_argument("metrics: " + quoted(full) + " is not a valid metric name");
    }
    if (d.kind == metric_kind::histogram ? !d.read_histogram : !d.read_number) {
      throw std::invalid_argument("metrics: " + quoted(full) + " has no reader");
    }
    for (std::size_t i = 0; i < d.labels.size(); ++i) {
      const std::string& label = d.labels[i].first;
      if (!valid_label_name(label)) {
        throw std::invalid_argument("metrics: " + quoted(full) + ": " + quoted(label) + " is not a valid label name");
      }
      if (label == "shard") {
        throw std::invalid_argument("metrics: " + quoted(full) + ": the label \"shard\" is the collector's");
      }
      if (d.kind == metric_kind::histogram && label == "le") {
        throw std::invalid_argument("metrics: " + quoted(full) + ": a histogram's label \"le\" is its buckets'");
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (d.labels[j].first == label) {
          throw std::invalid_argument("metrics: " + quoted(full) + ": label " + quoted(label) + " given twice");
        }
      }
    }
    auto same_name = [&](const metric_definition& o, const std::string& o_full) {
      if (o_full != full) return false;
      if (o.kind != d.kind || o.help != d.help) {
        throw std::invalid_argument("metrics: " + quoted(full) + " is already registered with another kind or help");
      }
      auto sorted = [](metrics::labels l) {
        std::sort(l.begin(), l.end());
        return l;
      };
      return sorted(o.labels) == sorted(d.labels);
    };
    if (auto it = r.by_name.find(full); it != r.by_name.end()) {
      for (std::uint64_t id : it->second) {
        if (same_name(r.entries.at(id).definition, full)) {
          throw std::invalid_argument("metrics: " + quoted(full) + " with these labels is already registered");
        }
      }
    }
    for (const entry& e : fresh) {
      if (same_name(e.definition, e.name)) {
        throw std::invalid_argument("metrics: " + quoted(full) + " with these labels is given twice");
      }
    }
    fresh.push_back(entry{std::move(full), std::move(d)});
  }
  // All or nothing: what an allocation failure interrupts is taken back.
  _registry = &r;
  const std::size_t ids_before = _ids.size();
  try {
    _ids.reserve(_ids.size() + fresh.size());
    for (entry& e : fresh) {
      const std::uint64_t id = r.next_id++;
      std::string name = e.name;
      r.entries.emplace(id, std::move(e));
      _ids.push_back(id);
      r.by_name[name].push_back(id);
    }
  } catch (...) {
    std::vector<std::uint64_t> added(_ids.begin() + static_cast<std::ptrdiff_t>(ids_before), _ids.end());
    _ids.resize(ids_before);
    remove(r, added);
    throw;
  }
  return *this;
}

void metric_groups::remove(core_internal::metrics_registry& r, const std::vector<std::uint64_t>& ids) noexcept {
  for (std::uint64_t id : ids) {
    auto it = r.entries.find(id);
    if (it == r.entries.end()) continue;
    auto named = r.by_name.find(it->second.name);
    if (named != r.by_name.end()) {
      std::erase(named->second, id);
      if (named->second.empty()) r.by_name.erase(named);
    }
    r.entries.erase(it);
  }
}

void metric_groups::clear() noexcept {
  if (_ids.empty() || registry_gone) return;
  registry& r = local_registry();
  REEF_ASSERT(_registry == &r, "metric_groups cleared on another thread than its own");
  remove(r, _ids);
  _ids.clear();
}

bool is_registered(std::string_view full_name, const metrics::labels& labels) {
  registry& r = local_registry();
  auto it = r.by_name.find(full_name);
  if (it == r.by_name.end()) return false;
  auto sorted = [](metrics::labels l) {
    std::sort(l.begin(), l.end());
    return l;
  };
  const metrics::labels wanted = sorted(labels);
  for (std::uint64_t id : it->second) {
    if (sorted(r.entries.at(id).definition.labels) == wanted) return true;
  }
  return false;
}

std::vector<family> read_all(std::string_view name_prefix) {
  registry& r = local_registry();
  std::vector<family> out;
  for (auto it = r.by_name.lower_bound(name_prefix); it != r.by_name.end(); ++it) {
    if (it->first.compare(0, name_prefix.size(), name_prefix) != 0) break;
    family f;
    f.name = it->first;
    for (std::uint64_t id : it->second) {
      auto found = r.entries.find(id);
      if (found == r.entries.end()) continue;
      const metric_definition& d = found->second.definition;
      f.help = d.help;
      f.kind = d.kind;
      sample s;
      try {
        if (d.kind == metric_kind::histogram) {
          s.histogram = d.read_histogram();
        } else {
          s.value = d.read_number();
        }
      } catch (...) {
        continue;
      }
      s.labels = d.labels;
      f.samples.push_back(std::move(s));
    }
    if (!f.samples.empty()) out.push_back(std::move(f));
  }
  return out;
}

std::size_t registered() noexcept { return local_registry().entries.size(); }

}  // namespace reef::metrics
