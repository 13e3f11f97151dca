// DPDK's Environment Abstraction Layer, started once per process: before
// the shards, from the main thread, with what Reef's flags say.
//
//   dpdk::start_eal({.args = dpdk::split_eal_args("--no-huge -m 256 --vdev=net_tap0,iface=dtap0"),
//                    .cpus = {0, 1}});
//   ... dpdk_device ... smp::run ...
//   dpdk::stop_eal();
//
// EAL is given one lcore of its own, the main one, on the shards' CPUs
// (`--lcores 0@(cpus)`, unless the arguments choose lcores themselves):
// the shards are Reef's threads, not EAL's, and each registers with EAL
// when it opens a queue (rte_thread_register: the mempools' per-lcore
// caches then serve it). The calling thread's CPU affinity is what it was
// before. Unless the arguments name one, the runtime files get a prefix of
// this process's own (`--file-prefix reef-PID`), so that two programs, or
// two tests, never take each other for a primary process.
//
// Thread rules: start_eal and stop_eal on the main thread, with no shard
// running; EAL starts once per process (DPDK cannot start it again, even
// after stop_eal).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reef::dpdk {

struct eal_options {
  /// EAL's own arguments, passed through unchanged (--vdev=..., --no-huge,
  /// -m, --file-prefix, -a PCI, ...).
  std::vector<std::string> args;
  /// The shards' CPUs (the OS's numbers); empty: what this thread may run on.
  std::vector<unsigned> cpus;
  /// A hugetlbfs mount to take memory from (--huge-dir); empty: EAL's choice.
  std::string hugepages;
};

/// Splits an argument string as a shell would for the simple cases:
/// whitespace between arguments, single or double quotes around one that
/// holds spaces. Throws std::invalid_argument for a quote left open.
std::vector<std::string> split_eal_args(std::string_view text);

/// The argument vector start_eal passes to rte_eal_init (after the
/// program's name): `options` plus the defaults above.
std::vector<std::string> eal_arguments(const eal_options& options);

/// Starts EAL. Throws std::runtime_error saying why it did not start
/// (EAL's reason: a bad argument, no memory, a device that failed to
/// probe), or std::logic_error if it was started before in this process.
void start_eal(const eal_options& options);

/// Whether start_eal succeeded and stop_eal has not run.
bool eal_running() noexcept;

/// Releases EAL's resources (rte_eal_cleanup). The ports must be stopped.
void stop_eal() noexcept;

}  // namespace reef::dpdk
