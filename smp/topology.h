// The machine as the shards see it: which CPUs (processing units) may be
// used, which core and NUMA node each belongs to, and how much memory each
// node has. Read with hwloc; where hwloc finds less than expected (a VM that
// hides its caches, a container that hides the NUMA layout) the missing
// parts degrade to one node holding every allowed CPU and all the memory.
//
// Also: parsing `--cpuset` lists and choosing the CPUs of the shards from
// `--smp` and `--cpuset`.
//
// Thread rules: discover() may be called from any thread; the result is a
// plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace reef {

/// One processing unit (hardware thread) the process may run on.
struct cpu_info {
  unsigned os_index = 0;   // the kernel's CPU number
  unsigned core = 0;       // the core's logical index (PUs of one core share it)
  unsigned numa_node = 0;  // the NUMA node's OS index
};

/// One NUMA node (memory domain).
struct numa_node_info {
  unsigned os_index = 0;
  std::uint64_t memory_bytes = 0;
  std::vector<unsigned> cpus;  // OS indexes of its allowed CPUs
};

class topology {
 public:
  /// Reads the machine. Never fails: without hwloc's view, it falls back to
  /// the scheduler's affinity mask and the system's memory size.
  static topology discover();

  /// Builds a topology from parts (for tests and for the fallback).
  topology(std::vector<cpu_info> cpus, std::vector<numa_node_info> nodes, std::string source);

  /// The CPUs this process may run on, by OS index.
  const std::vector<cpu_info>& cpus() const noexcept { return _cpus; }
  const std::vector<numa_node_info>& numa_nodes() const noexcept { return _nodes; }
  /// The memory of all nodes, and at least what the kernel counts.
  std::uint64_t total_memory_bytes() const noexcept;
  /// Where the data came from: "hwloc" or "fallback (why)".
  const std::string& source() const noexcept { return _source; }
  /// The CPU with this OS index, if allowed.
  const cpu_info* find_cpu(unsigned os_index) const noexcept;

 private:
  std::vector<cpu_info> _cpus;
  std::vector<numa_node_info> _nodes;
  std::string _source;
};

/// What was wrong with a flag's value; the message names the flag.
class flag_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Parses a CPU list such as "0-3,8" (ranges and single numbers, separated
/// by commas; no duplicates). Throws flag_error naming `--cpuset`.
std::vector<unsigned> parse_cpuset(std::string_view text);

/// The CPUs the shards run on, one per shard, shard 0 first.
///   smp:    how many shards (default: every CPU allowed / listed).
///   cpuset: which CPUs may be used (default: all allowed ones).
///   overprovisioned: more shards than CPUs are allowed; they take the
///           CPUs in turn, several to a CPU (--overprovisioned).
/// With fewer shards than CPUs, distinct cores come before a second PU of
/// the same core, and NUMA nodes are used in turn. Throws flag_error naming
/// `--smp` or `--cpuset` when the request cannot be met (more shards than
/// CPUs without `overprovisioned`, a listed CPU that is not allowed, zero
/// shards).
std::vector<cpu_info> select_cpus(const topology& topo, std::optional<unsigned> smp,
                                  const std::optional<std::vector<unsigned>>& cpuset,
                                  bool overprovisioned = false);

}  // namespace reef
