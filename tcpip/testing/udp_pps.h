// The load of the UDP datagrams-per-second benchmarks (tcpip's over the
// virtual link, dpdk's over net_ring): two native stacks on the given
// shards, stack A sending 64-byte datagrams from 64 ports of shard 0 to
// port 9 of stack B as fast as the device takes them (at most 1,024 in
// flight), every shard of B counting what its socket receives.
#pragma once

#include <cstdint>
#include <utility>

#include "smp/smp.h"
#include "tcpip/device.h"

namespace reef::tcpip::testing {

/// One run of `datagrams`: the seconds from the first sent to the last
/// received (or to the end of a second's wait for stragglers), and how
/// many were received. Runs smp::run with `shards`.
std::pair<double, std::uint64_t> udp_pps_run(device& a, device& b, smp_options shards, std::uint64_t datagrams);

}  // namespace reef::tcpip::testing
