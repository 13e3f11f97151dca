// The network stack interface, and the free functions applications call.
//
// A network_stack turns addresses into sockets: the POSIX stack
// (net/posix_stack.h) uses the kernel's; the native stack (tcpip/) will
// run its own. Stacks register by name when their library is linked; one
// is selected for the process (--network-stack, net/stack_flags.h; "posix"
// by default), and each shard creates its own instance on first use.
//
// Thread rules: register and select before the shards start; the free
// functions and this_shard_network_stack() on a shard (a reactor thread).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/future.h"
#include "net/api.h"

namespace reef {

class network_stack {
 public:
  virtual ~network_stack() = default;
  virtual const char* name() const noexcept = 0;
  /// Listens on `address`. Throws std::system_error naming the call.
  virtual server_socket listen(const socket_address& address, const listen_options& options) = 0;
  /// Connects to `address` as `options` say; fails with std::system_error
  /// naming the call, timed_out_error, or abort_requested_exception.
  virtual future<connected_socket> connect(const socket_address& address, const connect_options& options) = 0;
  /// A UDP socket bound to `local` (port 0: any). Throws std::system_error.
  virtual udp_channel make_udp_channel(const socket_address& local) = 0;
  /// Resolves once the stack has what it needs to carry traffic: at once
  /// for most; a native stack waiting for DHCP resolves with its first
  /// lease (or fails as the DHCP client does).
  virtual future<> ready() { return make_ready_future<>(); }
};

using network_stack_factory = std::function<std::unique_ptr<network_stack>()>;

/// Makes a stack available by `name` (done by the stack's library when
/// linked).
void register_network_stack(std::string name, network_stack_factory factory);

/// Selects the stack shards create. Throws std::invalid_argument listing
/// the registered names if `name` is not one.
void select_network_stack(std::string_view name);

/// The registered stacks' names, sorted.
std::vector<std::string> network_stack_names();

/// This shard's stack, created on first use. Throws std::logic_error if no
/// stack is registered (link //net:posix_stack).
network_stack& this_shard_network_stack();

/// Listens on `address` with this shard's stack.
server_socket listen(const socket_address& address, const listen_options& options = {});

/// Connects to `address` with this shard's stack.
future<connected_socket> connect(const socket_address& address, const connect_options& options = {});

/// A UDP socket on this shard's stack, bound to `local` (default: any
/// IPv4 address, a port the kernel picks).
udp_channel make_udp_channel(const socket_address& local = socket_address());

}  // namespace reef
