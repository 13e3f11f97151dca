// Test support: shards for a test that needs two of them.
#pragma once

#include <optional>

#include "core/reactor.h"
#include "smp/topology.h"
#include "smp/smp.h"

namespace reef::testing {

/// smp_options for two shards on two CPUs, pinned; on a one-CPU machine,
/// two unpinned shards on the one CPU. Each shard's reactor gets `reactor`
/// (the command line's flags, typically), without SIGINT/SIGTERM handlers.
inline smp_options two_shards(reactor_options reactor) {
  smp_options o;
  topology topo = topology::discover();
  o.cpus = select_cpus(topo, topo.cpus().size() >= 2 ? 2 : 1, std::nullopt);
  if (o.cpus.size() < 2) {
    o.cpus.push_back(o.cpus.front());
    o.pin_threads = false;
  }
  o.reactor = reactor;
  o.reactor.stop_on_sigint_sigterm = false;
  return o;
}

/// The reactor options of the test's command line (smp/testing:main parses
/// it): what the `_epoll` twin of a test passes arrives here.
reactor_options command_line_reactor_options();

/// two_shards() with the command line's reactor options.
inline smp_options two_shards() { return two_shards(command_line_reactor_options()); }

/// One shard on the calling thread, or two_shards(), with the command
/// line's reactor options: for tests that run on either.
inline smp_options one_or_two_shards(unsigned n) {
  if (n == 2) return two_shards();
  smp_options o;
  o.reactor = command_line_reactor_options();
  o.reactor.stop_on_sigint_sigterm = false;
  return o;
}

}  // namespace reef::testing
