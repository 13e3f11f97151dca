// One shard's ARP table (RFC 826): IPv4 address to MAC, learned from
// replies and from requests' senders, entries that age out, and a bound on
// its size. resolve() asks the network once per address, retries with
// back-off, and fails with host unreachable after the last try, never
// hangs; what waits for an address is bounded too (a caller holding a
// packet for it drops the packet when resolve() fails).
//
// The cache does not send frames itself: it calls the owner's
// `send_request(ip)`, and the owner calls tick() now and then (a timer)
// and learn() for each ARP message it receives. Time is passed in, so
// tests run on any clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "core/timer.h"
#include "tcpip/ethernet.h"

namespace reef::tcpip {

struct arp_limits {
  std::size_t entries_max = 4096;                   // learned addresses kept
  std::chrono::milliseconds entry_lifetime{60'000};  // then asked again
  std::size_t waiting_max = 1024;                   // resolve() callers waiting, all addresses
  std::size_t waiting_per_address_max = 16;         // ... and for one address (one absent host
                                                    // cannot take every slot)
  unsigned tries = 4;                               // requests per address before it fails
  std::chrono::milliseconds first_retry{250};       // doubling after each try
};

struct arp_stats {
  std::uint64_t requests_sent = 0;
  std::uint64_t learned = 0;
  std::uint64_t evicted = 0;      // entries dropped to stay under entries_max
  std::uint64_t unreachable = 0;  // resolutions that ran out of tries
  std::uint64_t refused = 0;      // resolve() calls past waiting_max
};

class arp_cache {
 public:
  using time_point = lowres_clock::time_point;

  explicit arp_cache(noncopyable_function<void(std::uint32_t ip)> send_request, arp_limits limits = {});

  /// The MAC of `ip` if known and not aged out.
  std::optional<ethernet_address> lookup(std::uint32_t ip, time_point now) const noexcept {
    const entry* e = _last != nullptr && _last_ip == ip ? _last : find(ip);
    if (e == nullptr || now - e->learned >= _limits.entry_lifetime) return std::nullopt;
    return e->mac;
  }
  /// The MAC of `ip`: at once if known; otherwise once a reply is learned
  /// (a request goes out now, if none is outstanding for `ip`). Fails with
  /// std::system_error: EHOSTUNREACH after the last try, ENOBUFS when
  /// waiting_max callers already wait (or waiting_per_address_max for
  /// `ip`).
  future<ethernet_address> resolve(std::uint32_t ip, time_point now);
  /// What an ARP message's sender says: `ip` is at `mac`. Wakes those
  /// waiting for it. As RFC 826 merges: an address already known or asked
  /// for is updated; a new one is added only from a message addressed to
  /// us (`addressed_to_us`: its target is our address), so that messages
  /// about others cannot fill the table and push out the ones we use.
  /// The caller passes only senders on the interface's own network.
  void learn(std::uint32_t ip, ethernet_address mac, time_point now, bool addressed_to_us = true);
  /// Sends the retries that are due and fails the resolutions out of
  /// tries.
  void tick(time_point now);

  const arp_stats& stats() const noexcept { return _stats; }
  std::size_t size() const noexcept { return _entries.size(); }
  std::size_t waiting() const noexcept { return _waiting_count; }

 private:
  struct entry {
    ethernet_address mac;
    time_point learned;
    std::list<std::uint32_t>::iterator in_order;
  };
  struct resolution {
    std::vector<promise<ethernet_address>> waiters;
    unsigned tries = 0;
    time_point next_try;
    std::chrono::milliseconds backoff;
  };

  void ask(std::uint32_t ip, resolution& r, time_point now);
  // The entry of `ip`, remembered as the last one found; null if none.
  const entry* find(std::uint32_t ip) const noexcept;

  noncopyable_function<void(std::uint32_t)> _send_request;
  arp_limits _limits;
  std::unordered_map<std::uint32_t, entry> _entries;
  // The entry lookup() found last: most sends go to the one next hop, and
  // a hash table's lookup divides. (Nodes stay put until erased, which
  // forgets this.)
  mutable std::uint32_t _last_ip = 0;
  mutable const entry* _last = nullptr;
  std::list<std::uint32_t> _order;  // entries, least recently learned first
  std::unordered_map<std::uint32_t, resolution> _pending;
  std::size_t _waiting_count = 0;
  arp_stats _stats;
};

}  // namespace reef::tcpip
