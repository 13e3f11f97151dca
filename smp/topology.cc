#include "smp/topology.h"

#include <hwloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace reef {

namespace {

topology fallback(const std::string& why) {
  std::vector<cpu_info> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (unsigned i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(cpu_info{i, static_cast<unsigned>(cpus.size()), 0});
    }
  }
  if (cpus.empty()) cpus.push_back(cpu_info{0, 0, 0});
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  numa_node_info node;
  node.os_index = 0;
  node.memory_bytes = pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * page_size : 0;
  for (const auto& c : cpus) node.cpus.push_back(c.os_index);
  return topology(std::move(cpus), {std::move(node)}, "fallback (" + why + ")");
}

}  // namespace

topology::topology(std::vector<cpu_info> cpus, std::vector<numa_node_info> nodes, std::string source)
    : _cpus(std::move(cpus)), _nodes(std::move(nodes)), _source(std::move(source)) {}

std::uint64_t topology::total_memory_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const auto& n : _nodes) total += n.memory_bytes;
  // Some VMs show NUMA nodes holding less than the machine has (memory that
  // is online but on no node): the kernel's count is the floor.
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    auto physical = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
    if (physical > total) total = physical;
  }
  return total;
}

const cpu_info* topology::find_cpu(unsigned os_index) const noexcept {
  for (const auto& c : _cpus) {
    if (c.os_index == os_index) return &c;
  }
  return nullptr;
}

topology topology::discover() {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return fallback("hwloc_topology_init failed");
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return fallback("hwloc_topology_load failed");
  }
  // What this process may use (cgroups, taskset), intersected with what the
  // scheduler allows this thread.
  hwloc_bitmap_t allowed = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
  hwloc_bitmap_t bound = hwloc_bitmap_alloc();
  if (hwloc_get_cpubind(topo, bound, HWLOC_CPUBIND_PROCESS) == 0 && !hwloc_bitmap_iszero(bound)) {
    hwloc_bitmap_and(allowed, allowed, bound);
  }
  hwloc_bitmap_free(bound);

  std::vector<numa_node_info> nodes;
  int node_count = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < node_count; ++i) {
    hwloc_obj_t n = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    numa_node_info info;
    info.os_index = n->os_index;
    info.memory_bytes = n->attr != nullptr ? n->attr->numanode.local_memory : 0;
    nodes.push_back(info);
  }

  std::vector<cpu_info> cpus;
  int pu_count = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  for (int i = 0; i < pu_count; ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, static_cast<unsigned>(i));
    if (!hwloc_bitmap_isset(allowed, pu->os_index)) continue;
    cpu_info c;
    c.os_index = pu->os_index;
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    c.core = core != nullptr ? core->logical_index : pu->logical_index;
    c.numa_node = nodes.empty() ? 0 : nodes.front().os_index;
    for (int j = 0; j < node_count; ++j) {
      hwloc_obj_t n = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(j));
      if (n->cpuset != nullptr && hwloc_bitmap_isset(n->cpuset, pu->os_index)) {
        c.numa_node = n->os_index;
        break;
      }
    }
    cpus.push_back(c);
  }
  hwloc_bitmap_free(allowed);
  hwloc_topology_destroy(topo);

  if (cpus.empty()) return fallback("hwloc found no allowed processing unit");
  if (nodes.empty()) {
    topology fb = fallback("hwloc found no NUMA node");
    // Keep hwloc's CPUs (with cores), on the one node of the fallback.
    numa_node_info node = fb.numa_nodes().front();
    node.cpus.clear();
    for (auto& c : cpus) {
      c.numa_node = node.os_index;
      node.cpus.push_back(c.os_index);
    }
    return topology(std::move(cpus), {std::move(node)}, fb.source());
  }
  for (auto& n : nodes) {
    for (const auto& c : cpus) {
      if (c.numa_node == n.os_index) n.cpus.push_back(c.os_index);
    }
  }
  // Nodes with no allowed CPU stay listed (their memory exists) but hold no
  // shard.
  return topology(std::move(cpus), std::move(nodes), "hwloc");
}

std::vector<unsigned> parse_cpuset(std::string_view text) {
  auto fail = [&](const std::string& why) -> flag_error {
    return flag_error("flag --cpuset: '" + std::string(text) + "': " + why);
  };
  auto number = [&](std::string_view s) -> unsigned {
    unsigned v = 0;
    if (s.empty()) throw fail("empty CPU number");
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) {
      throw fail("'" + std::string(s) + "' is not a CPU number");
    }
    if (v >= 4096) throw fail("CPU " + std::string(s) + " is out of range");
    return v;
  };
  if (text.empty()) throw fail("empty list");
  std::vector<unsigned> out;
  std::set<unsigned> seen;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t comma = text.find(',', pos);
    std::string_view item = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    std::size_t dash = item.find('-');
    unsigned first, last;
    if (dash == std::string_view::npos) {
      first = last = number(item);
    } else {
      first = number(item.substr(0, dash));
      last = number(item.substr(dash + 1));
      if (last < first) throw fail("range " + std::string(item) + " goes backwards");
    }
    for (unsigned c = first; c <= last; ++c) {
      if (!seen.insert(c).second) throw fail("CPU " + std::to_string(c) + " is listed twice");
      out.push_back(c);
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::vector<cpu_info> select_cpus(const topology& topo, std::optional<unsigned> smp,
                                  const std::optional<std::vector<unsigned>>& cpuset, bool overprovisioned) {
  std::vector<cpu_info> usable;
  if (cpuset) {
    for (unsigned os_index : *cpuset) {
      const cpu_info* c = topo.find_cpu(os_index);
      if (c == nullptr) {
        throw flag_error("flag --cpuset: CPU " + std::to_string(os_index) +
                         " is not one this process may use");
      }
      usable.push_back(*c);
    }
  } else {
    usable = topo.cpus();
  }
  if (smp && *smp == 0) throw flag_error("flag --smp: needs at least one shard");
  if (usable.empty()) throw flag_error("flag --cpuset: no CPU to run on");
  unsigned wanted = smp.value_or(static_cast<unsigned>(usable.size()));
  if (wanted > usable.size() && overprovisioned) {
    // Several shards to a CPU: every CPU once, then again, in order.
    std::vector<cpu_info> shared;
    shared.reserve(wanted);
    for (unsigned i = 0; i < wanted; ++i) shared.push_back(usable[i % usable.size()]);
    return shared;
  }
  if (wanted > usable.size()) {
    throw flag_error("flag --smp: " + std::to_string(wanted) + " shards, but only " +
                     std::to_string(usable.size()) + " CPU(s) are available" +
                     (cpuset ? " in --cpuset" : ""));
  }
  if (wanted == usable.size()) return usable;

  // Spread: take CPUs round by round, each round at most one PU per core,
  // going through the NUMA nodes in turn.
  std::map<unsigned, std::vector<cpu_info>> by_node;
  for (const auto& c : usable) by_node[c.numa_node].push_back(c);
  std::vector<cpu_info> chosen;
  std::set<unsigned> taken;  // OS indexes
  while (chosen.size() < wanted) {
    std::set<std::pair<unsigned, unsigned>> cores_this_round;  // (node, core)
    bool progress = false;
    bool added = true;
    while (added && chosen.size() < wanted) {
      added = false;
      for (auto& [node, list] : by_node) {
        if (chosen.size() >= wanted) break;
        for (const auto& c : list) {
          if (taken.count(c.os_index) || cores_this_round.count({node, c.core})) continue;
          chosen.push_back(c);
          taken.insert(c.os_index);
          cores_this_round.insert({node, c.core});
          added = progress = true;
          break;
        }
      }
    }
    if (!progress) break;  // cannot happen: wanted <= usable
  }
  return chosen;
}

}  // namespace reef
