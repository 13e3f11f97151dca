// The user-space I/O scheduler: every file read and write of a shard passes
// through the shard's I/O queue for its disk before it reaches the kernel.
//
//   io_class query = io_class::named("query", 1000);
//   io_class compaction = io_class::named("compaction", 100);
//   co_await f.dma_read(pos, buf, len, query);        // fs/file.h takes a class
//   compaction.set_shares(200);                       // at run time, every shard
//   io_class::of(sg);  // a class whose shares follow a scheduling group's
//
// Classes: requests of a class share the disk with the other classes that
// have requests waiting, in proportion to their shares. A fair queue picks
// the next request by virtual time: each class's time advances by a
// request's cost divided by the class's shares, and the class furthest
// behind goes next (a class that was idle starts level with the others,
// with no credit saved up).
//
// Cost: from the disk model (fs/io_properties.h), a request costs
// 1/iops + bytes/bandwidth seconds of disk time, with the read or the write
// figures.
//
// Capacity: a token bucket over that cost, filled at one second of disk
// time per second and holding at most `latency_goal` of it, lets requests
// go only as fast as the disk works them; the rest wait here, in the fair
// queue, rather than in the disk's own queue where a high-share class
// would wait behind everything. The bucket belongs to the disk and the
// shards that use the disk draw from it (lock-free), so they share its
// capacity.
//
// Without a model for a file's disk the queue does not limit (requests go
// at once, counted in the statistics); the first such queue logs that.
//
// Thread rules: a queue belongs to its shard; io_class and
// set_io_properties() may be used from any thread (set_io_properties()
// before the shards use their queues).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "core/metrics.h"
#include "core/scheduling_group.h"
#include "core/timer.h"
#include "fs/io_properties.h"

namespace reef {

/// A priority class, the same on every shard.
class io_class {
 public:
  /// Classes that can exist in a process.
  static constexpr unsigned classes_max = 64;
  /// Shares a class may have: 1 to this.
  static constexpr unsigned shares_max = 1'000'000;

  /// The class named `name`, made with `shares` if it is new (an existing
  /// class keeps its shares: see set_shares). Throws std::invalid_argument
  /// for shares outside 1..shares_max or a name past classes_max.
  static io_class named(std::string_view name, unsigned shares = 1000);
  /// "default", 1000 shares: what file calls use unless told otherwise.
  static io_class default_class();

  unsigned id() const noexcept { return _id; }
  std::string name() const;
  unsigned shares() const noexcept;
  /// Changes the shares; each shard uses them from its next dispatch.
  /// The class stops following a scheduling group. Throws
  /// std::invalid_argument outside 1..shares_max.
  void set_shares(unsigned shares) const;

  /// From now on the class has `sg`'s shares, whatever they become
  /// (scheduling_group::set_shares()): the disk divides like the CPU.
  /// Once `sg` is destroyed the class has its own shares again. Throws
  /// std::invalid_argument if `sg` is not live.
  void follow(scheduling_group sg) const;
  /// The class "group:<name>" that follows `sg`. Throws
  /// std::invalid_argument if `sg` is not live, or as named() does.
  static io_class of(scheduling_group sg);

 private:
  friend class io_queue;  // its metrics name classes by id
  explicit io_class(unsigned id) noexcept : _id(id) {}
  unsigned _id;
};

enum class io_direction { read, write };

/// What a class has done on one shard's queue.
struct io_class_stats {
  std::uint64_t requests = 0;  // completed
  std::uint64_t bytes = 0;
  std::chrono::nanoseconds queue_time{0};      // summed: submitted to dispatched
  std::chrono::nanoseconds execution_time{0};  // summed: dispatched to completed
  double cost_s = 0;                           // summed: seconds of disk time
};

/// The fair queue alone: entries wait per class; pop() gives the next by
/// the classes' virtual times (see the file comment).
class fair_queue {
 public:
  struct entry {
    unsigned class_id = 0;
    double cost = 0;  // seconds of disk time (any unit, the same for all)
    entry* next = nullptr;
  };

  fair_queue();
  /// Queues `e` (not owned; it must live until popped).
  void push(entry& e);
  /// The next entry, or nullptr if none waits.
  entry* pop() noexcept;
  bool empty() const noexcept { return _waiting == 0; }
  std::size_t size() const noexcept { return _waiting; }

 private:
  struct class_state {
    entry* head = nullptr;
    entry* tail = nullptr;
    double vtime = 0;
  };
  struct active {
    double vtime;
    unsigned class_id;
  };
  std::vector<class_state> _classes;
  std::vector<active> _heap;  // the classes with entries, least vtime first
  double _vtime_now = 0;      // the vtime of the class served last
  std::size_t _waiting = 0;
};

/// A disk's capacity, shared by the shards that use it: a token bucket in
/// nanoseconds of disk time, lock-free.
class io_group {
 public:
  explicit io_group(disk_model model, std::chrono::microseconds latency_goal = std::chrono::microseconds(1500));
  /// Whether the model limits anything (all four numbers given).
  bool limited() const noexcept { return _limited; }
  const disk_model& model() const noexcept { return _model; }
  /// A request's cost in seconds of disk time.
  double cost(io_direction direction, std::size_t bytes) const noexcept;
  /// Takes `tokens` (ns of disk time) from the bucket: the position the
  /// bucket must reach before the request may go.
  std::uint64_t grab(std::uint64_t tokens) noexcept;
  /// How many tokens are still missing before `position` (0: go now).
  std::uint64_t deficit(std::uint64_t position) noexcept;

 private:
  void replenish() noexcept;

  const disk_model _model;
  const bool _limited;
  const std::uint64_t _burst_ns;  // disk time the bucket holds
  alignas(64) std::atomic<std::uint64_t> _tail{0};  // tokens ever taken
  alignas(64) std::atomic<std::uint64_t> _head;     // tokens ever made
  alignas(64) std::atomic<std::int64_t> _replenished_at;  // steady ns
};

/// One shard's queue for one disk.
class io_queue : public std::enable_shared_from_this<io_queue> {
 public:
  /// `disk` names the disk in the queue's metrics (label "disk").
  explicit io_queue(std::shared_ptr<io_group> group, std::string disk = "unmodelled");
  ~io_queue();
  io_queue(const io_queue&) = delete;
  io_queue& operator=(const io_queue&) = delete;

  /// Queues a request of `bytes` for `cls`; `op` starts it (submits it to
  /// the reactor's I/O backend) when the queue lets it go. The future holds
  /// what op's future holds.
  future<long> submit(io_class cls, io_direction direction, std::size_t bytes,
                      noncopyable_function<future<long>()> op);

  io_class_stats stats(io_class cls) const;
  std::size_t queued() const noexcept { return _queue.size() + (_next != nullptr ? 1 : 0); }
  std::size_t in_flight() const noexcept { return _in_flight; }
  const io_group& group() const noexcept { return *_group; }
  /// The disk's name in the metrics.
  const std::string& disk() const noexcept { return _disk; }

  /// Removes the queue's metrics (a queue that another replaced, which
  /// lives on while its requests finish, leaves the labels to the new one).
  void remove_metrics() noexcept;

 private:
  struct request;
  void dispatch();
  void start(request* r);
  // Registers class `id`'s metrics on its first request here.
  void meter_class(unsigned id) noexcept;

  std::shared_ptr<io_group> _group;
  fair_queue _queue;
  request* _next = nullptr;          // popped, waiting for its tokens
  std::uint64_t _next_position = 0;  // ... until the bucket reaches this
  timer<> _wake;                     // when the tokens will be there
  std::vector<io_class_stats> _stats;
  std::size_t _in_flight = 0;
  std::string _disk;
  std::uint64_t _metered = 0;  // bit c: class c's metrics are registered (or failed to be)
  bool _metrics_removed = false;
  // Last: removed before what they read.
  metrics::metric_groups _metrics;
};

/// Sets the disks' models (the --io-properties-file flag does this): each
/// disk gets an io_group; a file uses the disk whose mountpoint is the
/// longest prefix of its path.
void set_io_properties(std::vector<disk_properties> disks);

/// This shard's queue for a file at `path` (an absolute path, or relative
/// to the working directory).
std::shared_ptr<io_queue> io_queue_for(std::string_view path);

}  // namespace reef
