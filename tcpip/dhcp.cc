#include "tcpip/dhcp.h"

#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <system_error>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/sleep.h"
#include "core/with_timeout.h"

namespace reef::tcpip {

namespace {

logger dhcp_log("dhcp");

using clock_type = std::chrono::steady_clock;
constexpr std::uint32_t broadcast_address = 0xffffffff;

constexpr auto& at = ipv4_socket_address;

bool host_address(std::uint32_t a) noexcept { return a != 0 && (a >> 24) != 127 && (a >> 28) < 0xe; }

// The netmask of an address's class, for servers that send none.
std::uint32_t class_netmask(std::uint32_t a) noexcept {
  if ((a >> 31) == 0) return 0xff000000;
  if ((a >> 30) == 2) return 0xffff0000;
  return 0xffffff00;
}

}  // namespace

dhcp_client::dhcp_client(ipv4_interface& ip, udp_layer& udp, dhcp_options options, lease_listener listener)
    : _ip(ip),
      _options(options),
      _listener(std::move(listener)),
      _channel(udp.make_channel(at(0, dhcp_message::client_port))),
      _xid(std::random_device{}()) {}

dhcp_client::~dhcp_client() { REEF_ASSERT(!_running, "dhcp_client destroyed before stop()"); }

future<dhcp_lease> dhcp_client::acquire() {
  REEF_ASSERT(!_running, "dhcp_client::acquire() called twice");
  _first.emplace();
  future<dhcp_lease> first = _first->get_future();
  _receiving = receive_loop();
  _running = run();
  return with_timeout(clock_type::now() + _options.timeout, std::move(first))
      .then_wrapped([](future<dhcp_lease> f) -> dhcp_lease {
        try {
          return f.get();
        } catch (const timed_out_error&) {
          throw std::system_error(ETIMEDOUT, std::system_category(), "DHCP: no server gave a lease in time");
        }
      });
}

future<> dhcp_client::stop() {
  _stop.request_abort();
  if (_reply) {
    _reply->set_exception(abort_requested_exception());
    _reply.reset();
  }
  _channel.close();
  if (_receiving) co_await std::move(*_receiving);
  if (_running) co_await std::move(*_running);
  _receiving.reset();
  _running.reset();
  if (_first) {
    _first->set_exception(std::system_error(ECANCELED, std::system_category(), "DHCP: stopped"));
    _first.reset();
  }
}

future<> dhcp_client::receive_loop() {
  for (;;) {
    udp_datagram d;
    try {
      d = co_await _channel.receive();
    } catch (const std::system_error& e) {
      if (e.code().value() == ECONNABORTED) co_return;  // closed
      continue;                                        // an ICMP error about what we sent
    }
    dhcp_message m;
    auto bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(d.data.get()), d.data.size());
    try {
      if (auto e = dhcp_message::parse(bytes, m); e != dhcp_error::none) {
        ++_stats.malformed;
        dhcp_log.debug("a reply from {} refused: error {}", d.source, static_cast<int>(e));
        continue;
      }
      accept(m);
    } catch (const std::bad_alloc&) {
      ++_stats.malformed;  // no memory for its options: dropped
    }
  }
}

void dhcp_client::accept(const dhcp_message& m) {
  if (m.xid != _xid || m.chaddr != _ip.info().mac || !_reply ||
      std::find(_awaited.begin(), _awaited.end(), m.type) == _awaited.end()) {
    ++_stats.ignored;
    dhcp_log.debug("a reply (type {}, xid {}) ignored", static_cast<int>(m.type), m.xid);
    return;
  }
  if ((m.type == dhcp_type::offer || m.type == dhcp_type::ack) && !host_address(m.yiaddr)) {
    ++_stats.malformed;
    return;
  }
  if (m.type == dhcp_type::offer && m.server_id == 0) {
    ++_stats.malformed;
    return;
  }
  ++_stats.received;
  _reply->set_value(m);
  _reply.reset();
}

future<std::optional<dhcp_message>> dhcp_client::exchange(dhcp_message m, std::uint32_t destination,
                                                          clock_type::time_point give_up) {
  auto retry = _options.first_retry;
  while (!_stop.abort_requested()) {
    m.xid = _xid;
    m.chaddr = _ip.info().mac;
    // The waiter first: a reply may come before the send resolves, and
    // stop() must find it.
    _reply.emplace();
    future<dhcp_message> reply = _reply->get_future();
    try {
      auto bytes = m.write();
      ++_stats.sent;
      co_await _channel.send(at(destination, dhcp_message::server_port),
                             packet::copy_of(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
    } catch (const std::exception& e) {
      dhcp_log.debug("sending a DHCP message failed: {}", e.what());
    }
    const auto now = clock_type::now();
    const auto deadline = std::min(give_up, now + retry);
    retry = std::min(retry * 2, _options.retry_max);
    try {
      co_return co_await with_timeout(deadline, std::move(reply));
    } catch (const timed_out_error&) {
      _reply.reset();
    } catch (...) {
      co_return std::nullopt;  // stopping
    }
    if (clock_type::now() >= give_up) co_return std::nullopt;
  }
  co_return std::nullopt;
}

std::optional<dhcp_lease> dhcp_client::lease_of(const dhcp_message& ack) const {
  if (!ack.lease_seconds || *ack.lease_seconds == 0) return std::nullopt;
  dhcp_lease l;
  l.address = ack.yiaddr;
  l.netmask = ack.netmask.value_or(class_netmask(ack.yiaddr));
  const std::uint32_t host_bits = ~l.netmask;
  if ((l.address & host_bits) == 0 || (l.address & host_bits) == host_bits) return std::nullopt;
  for (std::uint32_t r : ack.routers) {
    if ((r & l.netmask) == (l.address & l.netmask) && r != l.address && (r & host_bits) != host_bits) {
      l.gateway = r;
      break;
    }
  }
  l.server = ack.server_id;  // (0 if the ACK left it out: the caller keeps the one it knows)
  l.dns_servers = ack.dns_servers;
  // (At least a second each, so that a lease of 1 s cannot spin the
  // renewal loop.)
  const std::uint64_t lease = std::max<std::uint32_t>(*ack.lease_seconds, 1);
  l.lease = std::chrono::seconds(lease);
  l.rebind = std::chrono::seconds(std::clamp<std::uint64_t>(ack.rebind_seconds.value_or(lease / 8 * 7), 1, lease));
  l.renew = std::chrono::seconds(
      std::clamp<std::uint64_t>(ack.renew_seconds.value_or(lease / 2), 1, static_cast<std::uint64_t>(l.rebind.count())));
  return l;
}

future<std::optional<dhcp_lease>> dhcp_client::obtain() {
  bool pause = false;
  while (!_stop.abort_requested()) {
    if (pause) {
      // After a refusal: not at once again (a server that refuses every
      // request must not make the client spin).
      try {
        co_await sleep_abortable(_options.first_retry, _stop);
      } catch (...) {
        co_return std::nullopt;
      }
    }
    pause = true;
    ++_xid;
    dhcp_message discover;
    discover.type = dhcp_type::discover;
    discover.broadcast = true;
    _awaited = {dhcp_type::offer};
    auto offer = co_await exchange(discover, broadcast_address, clock_type::time_point::max());
    if (!offer) co_return std::nullopt;
    dhcp_message request;
    request.type = dhcp_type::request;
    request.broadcast = true;
    request.requested_ip = offer->yiaddr;
    request.server_id = offer->server_id;
    _awaited = {dhcp_type::ack, dhcp_type::nak};
    // Four tries (4 s, 8 s, 16 s, 32 s by default), then a new discovery.
    const auto give_up = clock_type::now() + _options.first_retry * 15;
    auto answer = co_await exchange(request, broadcast_address, give_up);
    if (!answer) continue;
    if (answer->type == dhcp_type::nak) {
      ++_stats.naks;
      continue;
    }
    auto lease = lease_of(*answer);
    if (!lease || lease->address != offer->yiaddr) {
      ++_stats.malformed;
      continue;
    }
    if (lease->server == 0) lease->server = offer->server_id;
    co_return lease;
  }
  co_return std::nullopt;
}

future<dhcp_client::renewal> dhcp_client::extend(dhcp_lease& lease, bool rebinding, clock_type::time_point until) {
  ++_xid;
  dhcp_message request;
  request.type = dhcp_type::request;
  request.ciaddr = lease.address;
  _awaited = {dhcp_type::ack, dhcp_type::nak};
  // Renewing asks the server that gave the lease; rebinding (or a server
  // we do not know) asks everyone.
  const bool broadcast = rebinding || lease.server == 0;
  auto answer = co_await exchange(request, broadcast ? broadcast_address : lease.server, until);
  if (!answer) co_return renewal::no_answer;
  if (answer->type == dhcp_type::nak) {
    ++_stats.naks;
    co_return renewal::refused;
  }
  auto renewed = lease_of(*answer);
  if (!renewed || renewed->address != lease.address) {
    ++_stats.malformed;
    co_return renewal::no_answer;
  }
  if (renewed->server == 0) renewed->server = lease.server;
  lease = *renewed;
  co_return renewal::kept;
}

future<> dhcp_client::run() {
  while (!_stop.abort_requested()) {
    try {
      auto lease = co_await obtain();
      if (!lease) co_return;
      co_await _listener(&*lease);
      ++_stats.leases;
      dhcp_log.info("leased {} for {} s from {}", ipv4_to_string(lease->address), lease->lease.count(),
                    ipv4_to_string(lease->server));
      if (_first) {
        _first->set_value(*lease);
        _first.reset();
      }
      for (;;) {
        const auto granted = clock_type::now();
        co_await sleep_abortable(lease->renew, _stop);
        // Renewing from T1, rebinding from T2; a NAK ends the lease at once
        // (RFC 2131 4.4.5).
        auto outcome = co_await extend(*lease, false, granted + lease->rebind);
        if (outcome == renewal::no_answer && !_stop.abort_requested()) {
          outcome = co_await extend(*lease, true, granted + lease->lease);
        }
        if (_stop.abort_requested()) co_return;
        if (outcome != renewal::kept) break;
        co_await _listener(&*lease);
        ++_stats.leases;
      }
      ++_stats.expired;
      dhcp_log.warn("the lease of {} ended", ipv4_to_string(lease->address));
      co_await _listener(nullptr);
    } catch (const abort_requested_exception&) {
      co_return;
    } catch (const std::exception& e) {
      // The listener failed: try again after a pause (below).
      dhcp_log.error("DHCP: {}", e.what());
    }
    try {
      co_await sleep_abortable(_options.first_retry, _stop);
    } catch (...) {
      co_return;
    }
  }
}

}  // namespace reef::tcpip
