#include "core/scheduling_group.h"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/format.h"

namespace reef {

namespace {

// The process's groups. Made and destroyed rarely, under the mutex; the
// reactors read shares with relaxed loads.
struct group_registry {
  std::mutex mutex;
  std::string names[scheduling_group::groups_max];  // under the mutex; "" for a free id
  bool live[scheduling_group::groups_max] = {true};  // under the mutex; the default group is
  std::atomic<std::int64_t> shares[scheduling_group::groups_max] = {};
  // Of the live group in each id (0: none); bumped when an id is taken.
  std::atomic<std::uint32_t> incarnation[scheduling_group::groups_max] = {};
  std::uint32_t incarnations_made[scheduling_group::groups_max] = {};  // under the mutex
  std::atomic<std::uint64_t> generation{0};

  group_registry() {
    names[0] = "main";
    shares[0].store(scheduling_group::default_shares, std::memory_order_relaxed);
    incarnations_made[0] = 1;
    incarnation[0].store(1, std::memory_order_relaxed);
  }
};

group_registry& registry() {
  static auto* r = new group_registry();  // never destroyed: threads may outlive statics
  return *r;
}

void check_shares(std::string_view name, std::int64_t shares) {
  if (shares < 1 || shares > scheduling_group::shares_max) {
    throw std::invalid_argument(format("scheduling group \"{}\": shares {} outside 1..{}", name, shares,
                                       scheduling_group::shares_max));
  }
}

}  // namespace

std::string scheduling_group::name() const {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return r.names[_id];
}

std::int64_t scheduling_group::shares() const noexcept {
  return registry().shares[_id].load(std::memory_order_relaxed);
}

void scheduling_group::set_shares(std::int64_t shares) const {
  if (shares < 1 || shares > shares_max) check_shares(name(), shares);
  registry().shares[_id].store(shares, std::memory_order_relaxed);
}

scheduling_group create_scheduling_group(std::string_view name, std::int64_t shares) {
  check_shares(name, shares);
  if (name.empty()) throw std::invalid_argument("scheduling group: empty name");
  if (name.size() > scheduling_group::name_max) {
    throw std::invalid_argument(format("scheduling group \"{}\": name longer than {} bytes", name,
                                       scheduling_group::name_max));
  }
  auto& r = registry();
  std::unique_lock lock(r.mutex);
  unsigned free_id = 0;
  for (unsigned id = 0; id < scheduling_group::groups_max; ++id) {
    if (r.live[id] && r.names[id] == name) {
      throw std::invalid_argument(format("scheduling group \"{}\" exists", name));
    }
    if (!r.live[id] && free_id == 0) free_id = id;
  }
  if (free_id == 0) {
    throw std::length_error(format("scheduling group \"{}\": a process has at most {} groups, the default included",
                                   name, scheduling_group::groups_max));
  }
  r.names[free_id] = std::string(name);  // may throw: nothing changed yet
  r.live[free_id] = true;
  r.shares[free_id].store(shares, std::memory_order_relaxed);
  r.incarnation[free_id].store(++r.incarnations_made[free_id], std::memory_order_relaxed);
  r.generation.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  if (auto changed = core_internal::scheduling_groups_changed) changed();
  return scheduling_group(free_id);
}

void destroy_scheduling_group(scheduling_group sg) {
  if (sg.is_default()) throw std::invalid_argument("destroy_scheduling_group: the default group stays");
  auto& r = registry();
  std::unique_lock lock(r.mutex);
  if (!r.live[sg.id()]) {
    throw std::invalid_argument(format("destroy_scheduling_group: no live group with id {}", sg.id()));
  }
  if (auto idle = core_internal::scheduling_group_idle; idle != nullptr && !idle(sg.id())) {
    throw std::logic_error(format("destroy_scheduling_group: group \"{}\" has work on this shard",
                                  r.names[sg.id()]));
  }
  r.live[sg.id()] = false;
  r.names[sg.id()].clear();
  r.incarnation[sg.id()].store(0, std::memory_order_relaxed);
  r.generation.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  if (auto changed = core_internal::scheduling_groups_changed) changed();
}

namespace core_internal {

std::uint64_t scheduling_groups_generation() noexcept {
  return registry().generation.load(std::memory_order_relaxed);
}

std::vector<scheduling_group_info> live_scheduling_groups() {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<scheduling_group_info> groups;
  for (unsigned id = 0; id < scheduling_group::groups_max; ++id) {
    if (r.live[id]) groups.push_back({id, r.names[id], r.incarnation[id].load(std::memory_order_relaxed)});
  }
  return groups;
}

std::int64_t scheduling_group_shares(unsigned id) noexcept {
  return registry().shares[id].load(std::memory_order_relaxed);
}

std::uint32_t scheduling_group_incarnation(unsigned id) noexcept {
  return registry().incarnation[id].load(std::memory_order_relaxed);
}

}  // namespace core_internal

}  // namespace reef
