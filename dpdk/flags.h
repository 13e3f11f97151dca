// DPDK's command-line flags for the native stack. Linking this target
// (with //tcpip:native_stack_flags) defines them; with --dpdk-pmd, EAL and
// the port start on the main thread before the shards, and the native
// stack (--network-stack native) runs on the port instead of a TAP.
//
//   --dpdk-pmd              run the native stack on a DPDK port
//   --dpdk-port-index N     the port (default 0)
//   --dpdk-args '...'       EAL's arguments, passed through unchanged
//                           (--vdev=net_tap0,iface=dtap0, --no-huge -m 256,
//                           --file-prefix, -a PCI, ...)
//   --hugepages DIR         a hugetlbfs mount to take memory from
//   --dpdk-offloads=false   leave every checksum and segmentation to the
//                           stack, whatever the port advertises
//
// A start-up that fails (EAL refuses its arguments or finds no memory, no
// such port, too little memory for the pools) ends the program before the
// shards start, with the reason and exit status 1; a malformed flag, at
// parse time with status 2. EAL and the port are released at exit.
//
// Thread rules: the flags are read on the main thread.
#pragma once

namespace reef::dpdk {

class dpdk_device;

/// The process's port, once --dpdk-pmd started it (nullptr otherwise).
dpdk_device* process_dpdk_device() noexcept;

}  // namespace reef::dpdk
