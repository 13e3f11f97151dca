// Asynchronous name resolution: c-ares, driven by the shard's reactor.
//
//   inet_address a = co_await dns::resolve_name("example.org");
//   dns::host h = co_await dns::get_host_by_name("example.org");   // every address
//   dns::host r = co_await dns::get_host_by_addr(inet_address::parse("127.0.0.1"));
//
// No thread per lookup: c-ares' sockets are watched by the reactor's I/O
// backend and its retransmission timeouts are reactor timers. Names are
// looked up in /etc/hosts first (unless turned off), then asked of the
// servers in /etc/resolv.conf, or of those given in resolver_options (or
// --dns-server, net/dns/dns_flags.h).
//
// Errors: every failure is a dns::dns_error; a name that does not exist
// (NXDOMAIN) or has no address of the family asked is dns::name_not_found,
// and no answer from any server in time is dns::timeout_error, so callers
// can tell "no such host" from "the network is down".
//
// Thread rules: a resolver belongs to the shard that made it. The free
// functions use this shard's resolver, made on first use with the options
// set by set_default_options() (main thread, before shards start).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/future.h"
#include "net/api.h"

namespace reef::dns {

/// A lookup failed. `status()` is c-ares' code (ARES_E* in ares.h).
class dns_error : public std::runtime_error {
 public:
  dns_error(int status, const std::string& what) : std::runtime_error(what), _status(status) {}
  int status() const noexcept { return _status; }

 private:
  int _status;
};

/// The name does not exist, or has no address of the family asked.
class name_not_found : public dns_error {
 public:
  using dns_error::dns_error;
};

/// No server answered in time, after every try.
class timeout_error : public dns_error {
 public:
  using dns_error::dns_error;
};

/// What a lookup found.
struct host {
  /// The canonical name (for get_host_by_addr: the name of the address).
  std::string name;
  /// Other names (CNAMEs on the way, or extra PTR names).
  std::vector<std::string> aliases;
  /// In the order the answers gave them.
  std::vector<inet_address> addresses;
};

struct resolver_options {
  /// The servers to ask, in order; empty: those of /etc/resolv.conf.
  std::vector<socket_address> servers;
  /// How long to wait for one answer before trying again.
  std::chrono::milliseconds timeout{2000};
  /// How many times each server is asked.
  unsigned tries = 2;
  /// Look names up in /etc/hosts before asking servers.
  bool use_hosts_file = true;
};

class resolver {
 public:
  /// Throws dns_error if c-ares cannot be set up (a bad resolv.conf, no
  /// memory).
  explicit resolver(const resolver_options& options = {});
  /// Lookups still pending fail (dns_error "resolver closed").
  ~resolver();
  resolver(resolver&&) noexcept;
  resolver& operator=(resolver&&) noexcept;

  /// The first address of `name`; of either family unless one is given.
  future<inet_address> resolve_name(std::string_view name,
                                    std::optional<inet_address::family> family = std::nullopt);
  /// Every address of `name` (of `family`, or both).
  future<host> get_host_by_name(std::string_view name,
                                std::optional<inet_address::family> family = std::nullopt);
  /// The names of `address` (a PTR lookup).
  future<host> get_host_by_addr(const inet_address& address);

  /// Fails the pending lookups and releases the sockets; later lookups
  /// fail. Resolves when nothing of the resolver is left in flight.
  future<> close();

 private:
  class impl;
  std::shared_ptr<impl> _impl;
};

/// The options of the shards' default resolvers.
void set_default_options(resolver_options options);
const resolver_options& default_options();

/// This shard's resolver, made on first use and closed with the reactor.
resolver& this_shard_resolver();

inline future<inet_address> resolve_name(std::string_view name,
                                         std::optional<inet_address::family> family = std::nullopt) {
  return this_shard_resolver().resolve_name(name, family);
}
inline future<host> get_host_by_name(std::string_view name,
                                     std::optional<inet_address::family> family = std::nullopt) {
  return this_shard_resolver().get_host_by_name(name, family);
}
inline future<host> get_host_by_addr(const inet_address& address) {
  return this_shard_resolver().get_host_by_addr(address);
}

}  // namespace reef::dns
