// The DHCP client (RFC 2131): discover, offer, request, ack; then the
// lease renewed at T1 (from the server that gave it), rebound at T2 (from
// any), and given up when it ends, when the search starts again.
//
//   dhcp_client dhcp(ip, udp, {}, [&](const dhcp_lease* lease) {
//     return apply(lease);   // nullptr: the lease ended
//   });
//   dhcp_lease lease = co_await dhcp.acquire();   // fails after the timeout
//   ...
//   co_await dhcp.stop();
//
// The client runs on the interface's shard, on UDP port 68 from
// 0.0.0.0 until it has an address; it asks servers to broadcast their
// replies (it has no address to be sent to). Replies that are not for it
// (another transaction, another MAC) or that it cannot use (bad options,
// an offer of an address no host has) are dropped and counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/abort_source.h"
#include "core/function.h"
#include "core/future.h"
#include "core/gate.h"
#include "tcpip/dhcp_message.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/udp.h"

namespace reef::tcpip {

struct dhcp_lease {
  std::uint32_t address = 0;
  std::uint32_t netmask = 0;
  std::optional<std::uint32_t> gateway;
  std::uint32_t server = 0;
  std::vector<std::uint32_t> dns_servers;
  std::chrono::seconds lease{0};
  std::chrono::seconds renew{0};   // T1, from when it was granted
  std::chrono::seconds rebind{0};  // T2
};

struct dhcp_options {
  /// Retransmissions: the first after this, then doubling up to retry_max
  /// (RFC 2131 4.1: 4 s, up to 64 s).
  std::chrono::milliseconds first_retry{4000};
  std::chrono::milliseconds retry_max{64000};
  /// acquire() fails (std::system_error, ETIMEDOUT) if no lease by then.
  std::chrono::milliseconds timeout{60000};
};

struct dhcp_stats {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;   // replies taken
  std::uint64_t malformed = 0;  // replies that did not parse or could not be used
  std::uint64_t ignored = 0;    // another transaction's, another client's, or not awaited
  std::uint64_t naks = 0;
  std::uint64_t leases = 0;     // acks taken (the first and each renewal)
  std::uint64_t expired = 0;
};

class dhcp_client {
 public:
  /// Called with each lease taken (the first, and every renewal that
  /// changes nothing but its times) and with nullptr when it ends; the
  /// client waits for the future. It sets the interface's address itself
  /// only through this: a sharded stack sets every shard's.
  using lease_listener = noncopyable_function<future<>(const dhcp_lease*)>;

  /// Binds UDP port 68 on `udp` (throws std::system_error if it is taken).
  dhcp_client(ipv4_interface& ip, udp_layer& udp, dhcp_options options, lease_listener listener);
  ~dhcp_client();
  dhcp_client(const dhcp_client&) = delete;
  dhcp_client& operator=(const dhcp_client&) = delete;

  /// Starts the client; resolves with the first lease, once the listener
  /// applied it. Then renews in the background until stop().
  future<dhcp_lease> acquire();
  /// Stops the client (the lease is kept: the address stays).
  future<> stop();

  const dhcp_stats& stats() const noexcept { return _stats; }

 private:
  future<> run();
  future<> receive_loop();
  future<std::optional<dhcp_message>> exchange(dhcp_message m, std::uint32_t destination,
                                               std::chrono::steady_clock::time_point give_up);
  future<std::optional<dhcp_lease>> obtain();
  enum class renewal { kept, refused, no_answer };
  future<renewal> extend(dhcp_lease& lease, bool rebinding, std::chrono::steady_clock::time_point until);
  void accept(const dhcp_message& m);
  std::optional<dhcp_lease> lease_of(const dhcp_message& ack) const;

  ipv4_interface& _ip;
  dhcp_options _options;
  lease_listener _listener;
  udp_channel _channel;
  std::uint32_t _xid;
  std::vector<dhcp_type> _awaited;                 // what the current exchange waits for
  std::optional<promise<dhcp_message>> _reply;     // its waiter
  std::optional<promise<dhcp_lease>> _first;
  abort_source _stop;
  std::optional<future<>> _running;
  std::optional<future<>> _receiving;
  dhcp_stats _stats;
};

}  // namespace reef::tcpip
