// The native stack's command-line flags, and "native" in the stack
// registry (net/stack.h). Linking this target defines the flags and makes
// --network-stack native available; the stack then opens the TAP device
// (or the device a linked package provides: //dpdk:flags's --dpdk-pmd)
// and starts on every shard at its first use, and stops at smp's
// shutdown.
//
//   --tap-device NAME            the TAP interface (default tap0)
//   --host-ipv4-addr A.B.C.D[/N] the stack's address (default 192.168.122.2;
//                                /N sets the netmask too)
//   --netmask-ipv4-addr A.B.C.D  (default 255.255.255.0)
//   --gw-ipv4-addr A.B.C.D       the default gateway (default: none)
//   --dhcp                       ask a DHCP server for the address, netmask
//                                and gateway instead (shard 0 runs the client;
//                                every shard takes each lease)
//   --hw-queue-weight W          the share of its queue's flows a queue
//                                owner keeps, 0 to 1 (default 1)
//   --native-stack-mtu N         the IP MTU, 68 to 9000 (default: the
//                                interface's)
//
// A bad value, or flags that disagree (a gateway off the network), stop
// the program at parse time with a message naming the flag (exit status 2
// through app_template).
//
// Thread rules: parsed on the main thread before shards start.
#pragma once

#include "tcpip/native_stack.h"
#include "tcpip/tap_device.h"

namespace reef::tcpip {

struct native_stack_config {
  tap_options tap;
  native_stack_options stack;
  bool dhcp = false;
};

/// What the flags say (checked when they were parsed).
native_stack_config native_stack_config_from_flags();

/// A device that a linked package offers in place of the TAP (DPDK's,
/// //dpdk:flags): asked when "native" is first used; nullptr when its own
/// flags do not choose it. The device lives as long as the shards. Set
/// before main() (a static initializer of that package).
using native_device_provider = device* (*)();
void set_native_device_provider(native_device_provider provider);

/// On a shard inside smp::run, once "native" is in use: the process's
/// network (nullptr before its first use).
native_network* process_native_network() noexcept;

/// Resolves once the process's native stack has an address: at once for
/// a static one, or with DHCP's first lease (failing if none came within
/// the client's timeout). Ready at once where "native" is not in use.
future<> native_stack_configured();

}  // namespace reef::tcpip
