// Scheduling groups: dividing a shard's CPU time between kinds of work.
//
//   scheduling_group requests = create_scheduling_group("requests", 400);
//   scheduling_group compaction = create_scheduling_group("compaction", 100);
//   co_await with_scheduling_group(compaction, [] { return compact(); });
//   compaction.set_shares(200);  // at run time, on every shard
//
// Every task belongs to a group: the one that was running when the task was
// made, so continuations and coroutines stay in the group their work
// started in. with_scheduling_group() starts work in another group, and
// smp::submit_to() can name the group its work runs in on the target shard.
//
// The reactor keeps one queue of tasks per group. Each time it runs tasks it
// picks, among the groups with tasks queued, the one with the least virtual
// runtime (the CPU time it used divided by its shares) and runs it until its
// queue empties or the task quota is used up, then picks again. So groups
// that compete for the CPU get it in proportion to their shares, and a group
// that had nothing to do does not bank credit: when it has work again, its
// virtual runtime starts no lower than that of the group that ran last.
// A group with no competition gets the whole CPU whatever its shares.
//
// Groups are the same on every shard of the process: a group made on one
// thread can be used on all of them. Their number is bounded by
// scheduling_group::groups_max, the default group included. The I/O queue's
// classes can follow a group's shares (fs/io_queue.h, io_class::follow).
//
// Thread rules: create_scheduling_group(), destroy_scheduling_group(),
// set_shares() and the accessors may be called from any thread;
// with_scheduling_group() and current_scheduling_group() on a thread with a
// running reactor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/future.h"
#include "core/task.h"

namespace reef {

class scheduling_group {
 public:
  /// Groups that can exist in a process at once, the default group included.
  static constexpr unsigned groups_max = core_internal::scheduling_groups_max;
  /// Shares a group may have: 1 to this.
  static constexpr std::int64_t shares_max = 1'000'000;
  /// The default group's shares.
  static constexpr std::int64_t default_shares = 1000;
  /// The longest name a group may have.
  static constexpr std::size_t name_max = 64;

  /// The default group ("main", 1000 shares): where work runs unless told
  /// otherwise.
  constexpr scheduling_group() noexcept = default;

  /// 0 for the default group; below groups_max.
  unsigned id() const noexcept { return _id; }
  bool is_default() const noexcept { return _id == 0; }
  /// The group's name ("" once it is destroyed).
  std::string name() const;
  std::int64_t shares() const noexcept;
  /// Changes the shares; each shard's reactor uses them from its next task
  /// batch. Throws std::invalid_argument outside 1..shares_max.
  void set_shares(std::int64_t shares) const;

  friend bool operator==(scheduling_group a, scheduling_group b) noexcept { return a._id == b._id; }

 private:
  friend scheduling_group create_scheduling_group(std::string_view name, std::int64_t shares);
  friend scheduling_group current_scheduling_group() noexcept;
  explicit scheduling_group(unsigned id) noexcept : _id(id) {}
  unsigned _id = 0;
};

/// Makes a group named `name` with `shares`. Throws std::invalid_argument
/// for shares outside 1..shares_max, an empty name, a name longer than
/// name_max or one a live group has, and std::length_error when
/// groups_max groups exist (the message names the limit).
scheduling_group create_scheduling_group(std::string_view name, std::int64_t shares);

/// Ends a group: its id may be given to a later group. Throws
/// std::invalid_argument for the default group or a group that is not live,
/// and std::logic_error if this thread's reactor runs the group now or has
/// tasks of it queued.
/// REQUIRES: no shard has tasks of the group or makes any later (its work
/// has finished); only the calling thread's reactor is checked.
void destroy_scheduling_group(scheduling_group sg);

/// The group of the task running now (the default group outside tasks).
inline scheduling_group current_scheduling_group() noexcept {
  return scheduling_group(core_internal::current_scheduling_group);
}

/// The default group.
inline scheduling_group default_scheduling_group() noexcept { return scheduling_group(); }

namespace core_internal {

/// Bumped whenever a group is made or destroyed (relaxed): the reactor
/// compares it to what it saw to register its per-group metrics.
std::uint64_t scheduling_groups_generation() noexcept;

/// One live group, for the reactor's metrics.
struct scheduling_group_info {
  unsigned id;
  std::string name;
  /// Which group of those that had the id (1 for the first; the default
  /// group's is 1).
  std::uint32_t incarnation;
};
/// The live groups, the default one first.
std::vector<scheduling_group_info> live_scheduling_groups();

/// The shares of group `id` (relaxed), for the reactor's accounting.
std::int64_t scheduling_group_shares(unsigned id) noexcept;

/// The incarnation of the live group in `id`, 0 if none (relaxed): an I/O
/// class that follows a group notices that it is gone.
std::uint32_t scheduling_group_incarnation(unsigned id) noexcept;

/// Called on the thread that made or destroyed a group, after the change.
/// Set by the reactor; without one, nothing.
inline thread_local void (*scheduling_groups_changed)() noexcept = nullptr;

/// Whether this thread's reactor may let group `id` go: it is not running
/// it and has no task of it queued. Set by the reactor; without one, yes.
inline thread_local bool (*scheduling_group_idle)(unsigned id) noexcept = nullptr;

// Runs a function, as a task of a group, and forwards its result.
template <typename F, typename Future>
class scheduling_group_task final : public task {
 public:
  template <typename G>
  scheduling_group_task(unsigned group, G&& f) : task(group), _f(std::forward<G>(f)) {}
  Future get_future() noexcept { return _result.get_future(); }
  void run_and_dispose() noexcept override {
    Future f = futurize_invoke(_f);
    if (f.available()) {
      f.forward_to(std::move(_result));
      delete this;
      return;
    }
    // `_f` (a coroutine lambda's captures, say) lives until its work ends.
    (void)std::move(f).then_wrapped([this](Future done) {
      done.forward_to(std::move(_result));
      delete this;
    });
  }

 private:
  F _f;
  typename Future::promise_type _result;
};

}  // namespace core_internal

/// Runs `f()` in group `sg` and returns its result; its continuations stay
/// in `sg`. In the current group, `f` runs at once (the caller keeps it
/// alive, as for any call); otherwise it is moved into a task of `sg`,
/// which the reactor runs when `sg`'s turn comes, and which keeps `f`
/// until the future `f()` returned resolves.
template <typename F>
futurize_t<std::invoke_result_t<std::decay_t<F>&>> with_scheduling_group(scheduling_group sg, F&& f) noexcept {
  using result = futurize_t<std::invoke_result_t<std::decay_t<F>&>>;
  if (sg == current_scheduling_group()) return futurize_invoke(f);
  try {
    auto* t = new core_internal::scheduling_group_task<std::decay_t<F>, result>(sg.id(), std::forward<F>(f));
    result r = t->get_future();
    schedule(t);
    return r;
  } catch (...) {
    return futurize<result>::from_exception(std::current_exception());
  }
}

}  // namespace reef
