// Test support: shards for a test that needs two of them.
#pragma once

#include <optional>

#include "core/reactor.h"
#include "memory/topology.h"
#include "smp/smp.h"

namespace reef::testing {

/// smp_options for two shards on two CPUs, pinned; on a one-CPU machine,
/// two unpinned shards on the one CPU. Each shard's reactor gets `reactor`
/// (the command line's flags, typically), without SIGINT/SIGTERM handlers.
inline smp_options two_shards(reactor_options reactor) {
  smp_options o;
  memory::topology topo = memory::topology::discover();
  o.cpus = memory::select_cpus(topo, topo.cpus().size() >= 2 ? 2 : 1, std::nullopt);
  if (o.cpus.size() < 2) {
    o.cpus.push_back(o.cpus.front());
    o.pin_threads = false;
  }
  o.reactor = reactor;
  o.reactor.stop_on_sigint_sigterm = false;
  return o;
}

}  // namespace reef::testing
