#include "core/internal/helper_threads.h"

#include <sched.h>

namespace reef::core_internal {

namespace {

// Read before main(), so before any shard pins its thread.
struct startup_affinity {
  cpu_set_t cpus{};
  bool known = false;
  startup_affinity() noexcept {
    CPU_ZERO(&cpus);
    known = ::sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
  }
};

const startup_affinity& at_startup() noexcept {
  static const startup_affinity a;
  return a;
}

// Forces the read at static initialization.
[[maybe_unused]] const startup_affinity& read_early = at_startup();

}  // namespace

void use_process_cpus() noexcept {
  const startup_affinity& a = at_startup();
  if (a.known) ::sched_setaffinity(0, sizeof(a.cpus), &a.cpus);
}

int process_cpu_count() noexcept {
  const startup_affinity& a = at_startup();
  return a.known ? CPU_COUNT(&a.cpus) : 1;
}

}  // namespace reef::core_internal
