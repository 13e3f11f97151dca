#include "tcpip/arp_cache.h"

#include <cerrno>
#include <system_error>
#include <utility>

namespace reef::tcpip {

arp_cache::arp_cache(noncopyable_function<void(std::uint32_t ip)> send_request, arp_limits limits)
    : _send_request(std::move(send_request)), _limits(limits) {}

const arp_cache::entry* arp_cache::find(std::uint32_t ip) const noexcept {
  auto it = _entries.find(ip);
  if (it == _entries.end()) return nullptr;
  _last = &it->second;
  _last_ip = ip;
  return _last;
}

void arp_cache::ask(std::uint32_t ip, resolution& r, time_point now) {
  ++r.tries;
  ++_stats.requests_sent;
  r.next_try = now + r.backoff;
  r.backoff *= 2;
  _send_request(ip);
}

future<ethernet_address> arp_cache::resolve(std::uint32_t ip, time_point now) {
  if (auto mac = lookup(ip, now)) return make_ready_future<ethernet_address>(*mac);
  auto refuse = [&] {
    ++_stats.refused;
    return make_exception_future<ethernet_address>(
        std::system_error(ENOBUFS, std::system_category(), "ARP: too many packets wait for addresses"));
  };
  if (_waiting_count >= _limits.waiting_max) return refuse();
  if (auto p = _pending.find(ip); p != _pending.end() && p->second.waiters.size() >= _limits.waiting_per_address_max) {
    return refuse();
  }
  auto [it, added] = _pending.try_emplace(ip);
  resolution& r = it->second;
  r.waiters.emplace_back();
  ++_waiting_count;
  future<ethernet_address> f = r.waiters.back().get_future();
  if (added) {
    r.backoff = _limits.first_retry;
    ask(ip, r, now);
  }
  return f;
}

void arp_cache::learn(std::uint32_t ip, ethernet_address mac, time_point now, bool addressed_to_us) {
  if (mac.is_multicast() || ip == 0) return;  // no host is there
  auto it = _entries.find(ip);
  if (!addressed_to_us && it == _entries.end() && !_pending.contains(ip)) return;
  ++_stats.learned;
  if (it != _entries.end()) {
    _order.erase(it->second.in_order);
  } else {
    while (_entries.size() >= _limits.entries_max && !_order.empty()) {
      ++_stats.evicted;
      _last = nullptr;
      _entries.erase(_order.front());
      _order.pop_front();
    }
    it = _entries.emplace(ip, entry{}).first;
  }
  _order.push_back(ip);
  it->second = entry{mac, now, std::prev(_order.end())};
  if (auto p = _pending.find(ip); p != _pending.end()) {
    auto waiters = std::move(p->second.waiters);
    _pending.erase(p);
    _waiting_count -= waiters.size();
    for (auto& w : waiters) w.set_value(mac);
  }
}

void arp_cache::tick(time_point now) {
  // The due ones first: a request sent may come back as learn() at once
  // (a link without delay), which changes _pending.
  std::vector<std::uint32_t> due;
  for (const auto& [ip, r] : _pending) {
    if (now >= r.next_try) due.push_back(ip);
  }
  for (std::uint32_t ip : due) {
    auto it = _pending.find(ip);
    if (it == _pending.end()) continue;
    if (it->second.tries < _limits.tries) {
      ask(ip, it->second, now);
      continue;
    }
    ++_stats.unreachable;
    auto waiters = std::move(it->second.waiters);
    _pending.erase(it);
    _waiting_count -= waiters.size();
    for (auto& w : waiters) {
      w.set_exception(
          std::make_exception_ptr(std::system_error(EHOSTUNREACH, std::system_category(), "ARP: no reply")));
    }
  }
}

}  // namespace reef::tcpip
