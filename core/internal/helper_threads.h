// Where a reactor's helper threads run (the blocking-call pool, the stall
// detector): on the CPUs the process was given when it started, not on
// their shard's one. A shard's thread is pinned to its CPU, and threads it
// starts inherit that; a helper left there would take the CPU from its own
// reactor (two context switches each time it runs) and a blocking call
// would compete with the shard it is meant to spare.
//
// Thread rules: any thread.
#pragma once

namespace reef::core_internal {

/// Gives the calling thread the CPU affinity the process had at start-up.
void use_process_cpus() noexcept;

/// How many CPUs that is.
int process_cpu_count() noexcept;

}  // namespace reef::core_internal
