#include "fs/io_queue.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "core/log.h"
#include "core/reactor.h"

namespace reef {

namespace {

logger io_log("io");

struct class_registry {
  std::mutex mutex;
  std::vector<std::string> names;  // by id; under the mutex
  std::atomic<unsigned> shares[io_class::classes_max] = {};
  // The scheduling group whose shares the class follows: its incarnation
  // << 8 | (its id + 1); 0: the class's own shares.
  std::atomic<std::uint64_t> follows[io_class::classes_max] = {};
};

class_registry& registry() {
  static auto* r = new class_registry();
  return *r;
}

void check_shares(unsigned shares) {
  if (shares == 0 || shares > io_class::shares_max) {
    throw std::invalid_argument("io_class: shares " + std::to_string(shares) + " outside 1.." +
                                std::to_string(io_class::shares_max));
  }
}

// The shares a class has now: its own or its scheduling group's.
unsigned effective_shares(unsigned id) noexcept {
  auto& r = registry();
  const std::uint64_t follows = r.follows[id].load(std::memory_order_relaxed);
  if (follows != 0) {
    const auto group = static_cast<unsigned>(follows & 0xff) - 1;
    // (A destroyed group: the class's own shares again.)
    if (core_internal::scheduling_group_incarnation(group) == follows >> 8) {
      return static_cast<unsigned>(core_internal::scheduling_group_shares(group));
    }
  }
  return r.shares[id].load(std::memory_order_relaxed);
}

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady_clock_type::now().time_since_epoch()).count();
}

// The cost that orders requests where the disk has no model.
constexpr disk_model nominal_model{1e6, 1e9, 1e6, 1e9};

}  // namespace

// --- io_class ---------------------------------------------------------------

io_class io_class::named(std::string_view name, unsigned shares) {
  check_shares(shares);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  for (unsigned id = 0; id < r.names.size(); ++id) {
    if (r.names[id] == name) return io_class(id);
  }
  if (r.names.size() == classes_max) {
    throw std::invalid_argument("io_class: no room for '" + std::string(name) + "' (" +
                                std::to_string(classes_max) + " classes exist)");
  }
  unsigned id = static_cast<unsigned>(r.names.size());
  r.shares[id].store(shares, std::memory_order_relaxed);
  r.names.emplace_back(name);
  return io_class(id);
}

io_class io_class::default_class() {
  static const io_class c = named("default", 1000);
  return c;
}

std::string io_class::name() const {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.names[_id];
}

unsigned io_class::shares() const noexcept { return effective_shares(_id); }

void io_class::set_shares(unsigned shares) const {
  check_shares(shares);
  registry().shares[_id].store(shares, std::memory_order_relaxed);
  registry().follows[_id].store(0, std::memory_order_relaxed);
}

void io_class::follow(scheduling_group sg) const {
  const std::uint32_t incarnation = core_internal::scheduling_group_incarnation(sg.id());
  if (incarnation == 0) throw std::invalid_argument("io_class::follow: the scheduling group is not live");
  registry().follows[_id].store(std::uint64_t{incarnation} << 8 | (sg.id() + 1), std::memory_order_relaxed);
}

io_class io_class::of(scheduling_group sg) {
  // (Group shares have the same range as a class's.)
  static_assert(scheduling_group::shares_max == io_class::shares_max);
  const std::string name = sg.name();
  if (name.empty()) throw std::invalid_argument("io_class::of: the scheduling group is not live");
  io_class c = named("group:" + name, static_cast<unsigned>(sg.shares()));
  c.follow(sg);
  return c;
}

// --- fair_queue ---------------------------------------------------------------

namespace {
// Orders the heap so that the least virtual time is at the front.
struct later {
  template <typename A>
  bool operator()(const A& a, const A& b) const noexcept {
    return a.vtime > b.vtime || (a.vtime == b.vtime && a.class_id > b.class_id);
  }
};
}  // namespace

fair_queue::fair_queue() { _heap.reserve(io_class::classes_max); }

void fair_queue::push(entry& e) {
  if (e.class_id >= _classes.size()) _classes.resize(e.class_id + 1);
  class_state& c = _classes[e.class_id];
  e.next = nullptr;
  if (c.head == nullptr) {
    // Waking up: level with the others, no credit for the idle time.
    c.vtime = std::max(c.vtime, _vtime_now);
    _heap.push_back({c.vtime, e.class_id});
    std::push_heap(_heap.begin(), _heap.end(), later{});
    c.head = c.tail = &e;
  } else {
    c.tail->next = &e;
    c.tail = &e;
  }
  ++_waiting;
}

fair_queue::entry* fair_queue::pop() noexcept {
  if (_heap.empty()) return nullptr;
  std::pop_heap(_heap.begin(), _heap.end(), later{});
  const unsigned id = _heap.back().class_id;
  _heap.pop_back();
  class_state& c = _classes[id];
  entry* e = c.head;
  c.head = e->next;
  if (c.head == nullptr) c.tail = nullptr;
  _vtime_now = c.vtime;
  c.vtime += e->cost / std::max(1u, effective_shares(id));
  if (c.head != nullptr) {
    _heap.push_back({c.vtime, id});
    std::push_heap(_heap.begin(), _heap.end(), later{});
  }
  --_waiting;
  e->next = nullptr;
  return e;
}

// --- io_group -------------------------------------------------------------------

io_group::io_group(disk_model model, std::chrono::microseconds latency_goal)
    : _model(model),
      _limited(model.read_iops > 0 && model.read_bandwidth > 0 && model.write_iops > 0 && model.write_bandwidth > 0),
      _burst_ns(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(latency_goal).count())),
      _head(_burst_ns),
      _replenished_at(steady_ns()) {}

double io_group::cost(io_direction direction, std::size_t bytes) const noexcept {
  const disk_model& m = _limited ? _model : nominal_model;
  const double b = static_cast<double>(bytes);
  return direction == io_direction::read ? 1.0 / m.read_iops + b / m.read_bandwidth
                                         : 1.0 / m.write_iops + b / m.write_bandwidth;
}

std::uint64_t io_group::grab(std::uint64_t tokens) noexcept {
  return _tail.fetch_add(tokens, std::memory_order_relaxed) + tokens;
}

std::uint64_t io_group::deficit(std::uint64_t position) noexcept {
  std::uint64_t head = _head.load(std::memory_order_acquire);
  if (position <= head) return 0;
  replenish();
  head = _head.load(std::memory_order_acquire);
  return position > head ? position - head : 0;
}

void io_group::replenish() noexcept {
  const std::int64_t now = steady_ns();
  std::int64_t last = _replenished_at.load(std::memory_order_relaxed);
  if (now <= last) return;
  // One shard adds the time that passed; the others see it added.
  if (!_replenished_at.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  const auto delta = static_cast<std::uint64_t>(now - last);  // 1 ns of time makes 1 ns of disk time
  std::uint64_t head = _head.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t full = _tail.load(std::memory_order_relaxed) + _burst_ns;  // the bucket holds no more
    const std::uint64_t next = std::max(head, std::min(head + delta, full));
    if (next == head || _head.compare_exchange_weak(head, next, std::memory_order_release)) return;
  }
}

// --- io_queue -------------------------------------------------------------------

struct io_queue::request : fair_queue::entry {
  io_direction direction = io_direction::read;
  std::size_t bytes = 0;
  noncopyable_function<future<long>()> op;
  promise<long> result;
  steady_clock_type::time_point queued_at;
};

io_queue::io_queue(std::shared_ptr<io_group> group, std::string disk)
    : _group(std::move(group)), _stats(io_class::classes_max), _disk(std::move(disk)) {
  static_assert(io_class::classes_max <= 64, "one bit per class in _metered");
  _wake.set_callback([this] { dispatch(); });
  try {
    _metrics.add_group("io_queue", {
                                       metrics::make_gauge("queued", "Requests waiting in the queue.",
                                                           [this] { return static_cast<double>(queued()); },
                                                           {{"disk", _disk}}),
                                       metrics::make_gauge("in_flight", "Requests dispatched and not complete.",
                                                           [this] { return static_cast<double>(_in_flight); },
                                                           {{"disk", _disk}}),
                                   });
  } catch (const std::exception& e) {
    io_log.error("I/O queue metrics for {} not registered: {}", _disk, e.what());
  }
}

void io_queue::meter_class(unsigned id) noexcept {
  _metered |= std::uint64_t{1} << id;
  if (_metrics_removed) return;
  try {
    const metrics::labels labels{{"class", io_class(id).name()}, {"disk", _disk}};
    auto seconds = [](std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; };
    _metrics.add_group(
        "io_queue",
        {
            metrics::make_counter("requests_total", "Requests completed.", _stats[id].requests, labels),
            metrics::make_counter("bytes_total", "Bytes read or written.", _stats[id].bytes, labels),
            metrics::make_counter("queue_seconds_total", "Seconds requests waited in the queue, summed.",
                                  [this, id, seconds] { return seconds(_stats[id].queue_time); }, labels),
            metrics::make_counter("execution_seconds_total", "Seconds from dispatch to completion, summed.",
                                  [this, id, seconds] { return seconds(_stats[id].execution_time); }, labels),
            metrics::make_counter("disk_seconds_total", "Seconds of disk time the requests cost (the model's).",
                                  [this, id] { return _stats[id].cost_s; }, labels),
            metrics::make_gauge("shares", "The class's shares.",
                                [id] { return static_cast<double>(io_class(id).shares()); }, labels),
        });
  } catch (const std::exception& e) {
    io_log.error("I/O queue metrics for class {} not registered: {}", id, e.what());
  }
}

void io_queue::remove_metrics() noexcept {
  _metrics_removed = true;
  _metrics.clear();
}

io_queue::~io_queue() {
  // Only requests that never went are left (those in flight hold the queue).
  auto fail = [](request* r) {
    r->result.set_exception(std::system_error(ECANCELED, std::system_category(), "io_queue: shut down"));
    delete r;
  };
  if (_next != nullptr) fail(_next);
  while (auto* e = _queue.pop()) fail(static_cast<request*>(e));
}

future<long> io_queue::submit(io_class cls, io_direction direction, std::size_t bytes,
                              noncopyable_function<future<long>()> op) {
  if ((_metered & (std::uint64_t{1} << cls.id())) == 0) meter_class(cls.id());
  auto* r = new request;
  r->class_id = cls.id();
  r->cost = _group->cost(direction, bytes);
  r->direction = direction;
  r->bytes = bytes;
  r->op = std::move(op);
  r->queued_at = steady_clock_type::now();
  future<long> f = r->result.get_future();
  if (!_group->limited()) {
    start(r);  // nothing to wait for
    return f;
  }
  _queue.push(*r);
  dispatch();
  return f;
}

void io_queue::dispatch() {
  for (;;) {
    if (_next == nullptr) {
      auto* e = _queue.pop();
      if (e == nullptr) return;
      _next = static_cast<request*>(e);
      // In ns of disk time, at least 1, at most an hour (a model of
      // absurdly slow numbers must not overflow the conversion).
      const double ns = std::clamp(_next->cost * 1e9, 1.0, 3.6e12);
      _next_position = _group->grab(static_cast<std::uint64_t>(ns));
    }
    const std::uint64_t missing = _group->deficit(_next_position);
    if (missing > 0) {
      if (!_wake.armed()) _wake.arm(steady_clock_type::now() + std::chrono::nanoseconds(missing));
      return;
    }
    start(std::exchange(_next, nullptr));
  }
}

void io_queue::start(request* r) {
  const auto now = steady_clock_type::now();
  _stats[r->class_id].queue_time += now - r->queued_at;
  r->queued_at = now;  // from here: when it was dispatched
  ++_in_flight;
  future<long> f = futurize_invoke([r] { return r->op(); });
  (void)std::move(f).then_wrapped([self = shared_from_this(), r](future<long> done) {
    io_class_stats& s = self->_stats[r->class_id];
    s.execution_time += steady_clock_type::now() - r->queued_at;
    ++s.requests;
    s.bytes += r->bytes;
    s.cost_s += r->cost;
    --self->_in_flight;
    done.forward_to(std::move(r->result));
    delete r;
  });
}

io_class_stats io_queue::stats(io_class cls) const { return _stats[cls.id()]; }

// --- Which queue --------------------------------------------------------------------

namespace {

struct disk_entry {
  std::string mountpoint;
  std::shared_ptr<io_group> group;
};

struct disk_table {
  std::mutex mutex;
  std::vector<disk_entry> disks;
  std::shared_ptr<io_group> unmodelled = std::make_shared<io_group>(disk_model{});
  bool told = false;  // the "does not limit" line was logged
};

disk_table& table() {
  static auto* t = new disk_table();
  return *t;
}

// This shard's queues: by disk index; the last is the unmodelled disk's.
thread_local std::vector<std::shared_ptr<io_queue>>* local_queues = nullptr;

bool under(std::string_view path, std::string_view mountpoint) {
  if (mountpoint == "/") return true;
  if (path.substr(0, mountpoint.size()) != mountpoint) return false;
  return path.size() == mountpoint.size() || path[mountpoint.size()] == '/';
}

}  // namespace

void set_io_properties(std::vector<disk_properties> disks) {
  auto& t = table();
  std::lock_guard lock(t.mutex);
  t.disks.clear();
  for (auto& d : disks) t.disks.push_back({std::move(d.mountpoint), std::make_shared<io_group>(d.model)});
}

std::shared_ptr<io_queue> io_queue_for(std::string_view path) {
  std::string absolute(path);
  if (absolute.empty() || absolute.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof(cwd)) != nullptr) absolute = std::string(cwd) + "/" + absolute;
  }
  auto& t = table();
  std::size_t index;
  std::shared_ptr<io_group> group;
  std::string disk = "unmodelled";
  std::size_t count;
  {
    std::lock_guard lock(t.mutex);
    count = t.disks.size();
    index = count;
    std::size_t best = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& mp = t.disks[i].mountpoint;
      if (under(absolute, mp) && (index == count || mp.size() > best)) {
        index = i;
        best = mp.size();
      }
    }
    group = index < count ? t.disks[index].group : t.unmodelled;
    if (index < count) disk = t.disks[index].mountpoint;
    if (index == count && !t.told) {
      t.told = true;
      io_log.info("no disk model for {} (see --io-properties-file): the I/O queue does not limit", absolute);
    }
  }
  if (local_queues == nullptr) {
    local_queues = new std::vector<std::shared_ptr<io_queue>>();
    engine().at_destroy([] {
      delete local_queues;  // requests in flight keep their queue
      local_queues = nullptr;
    });
  }
  if (local_queues->size() < count + 1) local_queues->resize(count + 1);
  auto& q = (*local_queues)[index];
  if (!q || &q->group() != group.get()) {
    // The queue it replaces, and any other left in a slot that
    // set_io_properties() moved, give the disk's labels to the new one
    // (they live on while their requests finish).
    for (auto& other : *local_queues) {
      if (other && (other == q || other->disk() == disk)) other->remove_metrics();
    }
    q = std::make_shared<io_queue>(group, std::move(disk));
  }
  return q;
}

}  // namespace reef
