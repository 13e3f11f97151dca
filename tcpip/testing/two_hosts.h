// Two IPv4 hosts on this shard, 10.0.0.1 and 10.0.0.2, back to back over
// a virtual link: the fixture of the interface's and the transports'
// tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "tcpip/ipv4_interface.h"
#include "tcpip/virtual_link.h"

namespace reef::tcpip::testing {

inline constexpr std::uint32_t a_ip = 0x0a000001;  // 10.0.0.1
inline constexpr std::uint32_t b_ip = 0x0a000002;

/// ARP retries a second apart: an answer never comes late enough for a
/// retry, however loaded the machine.
inline interface_config config_of(std::uint32_t address) {
  interface_config c;
  c.address = address;
  c.arp.tries = 3;
  c.arp.first_retry = std::chrono::milliseconds(1000);
  c.tick = std::chrono::milliseconds(5);
  return c;
}

/// Retries 20 ms apart: for the tests that wait for ARP to give up.
inline interface_config quick_to_give_up(std::uint32_t address) {
  interface_config c = config_of(address);
  c.arp.first_retry = std::chrono::milliseconds(20);
  return c;
}

/// Started on construction; stop() before it goes.
struct two_hosts {
  explicit two_hosts(virtual_link_options options = {}, interface_config a_config = config_of(a_ip))
      : link(std::move(options)),
        a(link.end(0), link.end(0).open_queue(0), a_config),
        b(link.end(1), link.end(1).open_queue(0), config_of(b_ip)) {
    a.start();
    b.start();
  }
  future<> stop() {
    co_await a.stop();
    co_await b.stop();
  }
  virtual_link link;
  ipv4_interface a;
  ipv4_interface b;
};

/// Waits (1 ms at a time, `limit` at most: generous for a loaded machine;
/// a check after it says what did not happen) until `done()`.
template <typename Done>
future<> wait_until(Done done, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  for (auto waited = std::chrono::milliseconds(0); waited < limit && !done(); waited += std::chrono::milliseconds(1)) {
    co_await sleep(std::chrono::milliseconds(1));
  }
}

}  // namespace reef::tcpip::testing
