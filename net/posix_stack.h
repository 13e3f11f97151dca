// The POSIX network stack: the kernel's sockets, driven through the
// reactor's I/O backend (core/io_backend.h). On io_uring, accept, connect,
// recv and send are submitted as operations, batched into one submission
// per loop iteration, with no readiness round trip; on epoll, a call is
// tried at once and waits for readiness only when it would block.
//
// Listening: every shard that listens on a port gets its own socket with
// SO_REUSEPORT, and the kernel spreads connections among them
// (load_balancing::kernel); or shard 0 accepts and hands connections to the
// listening shards in turn (load_balancing::round_robin; shard 0 must be one
// of them).
//
// Registered as "posix" (the default) when linked. Thread rules: as
// net/api.h.
#pragma once

#include <memory>

#include "net/stack.h"

namespace reef {

/// Reads are made in buffers of this many bytes.
inline constexpr std::size_t posix_read_buffer_size = 16384;

/// A POSIX stack for this shard (what register_network_stack("posix")
/// creates).
std::unique_ptr<network_stack> make_posix_network_stack();

}  // namespace reef
