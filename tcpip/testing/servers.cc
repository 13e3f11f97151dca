#include "tcpip/testing/servers.h"

#include <exception>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/gate.h"

namespace reef::tcpip::testing {

future<> serve_datagrams(udp_channel& channel, noncopyable_function<std::string(const udp_datagram&)> answer) {
  for (;;) {
    udp_datagram d;
    try {
      d = co_await channel.receive();
    } catch (const std::system_error&) {
      co_return;  // closed
    }
    try {
      co_await channel.send(d.source, answer(d));
    } catch (const std::system_error&) {
    }
  }
}

future<> serve_connections(server_socket& server, noncopyable_function<future<>(accept_result)> serve) {
  gate connections;
  for (;;) {
    accept_result a;
    try {
      a = co_await server.accept();
    } catch (const std::system_error&) {
      break;  // aborted
    }
    (void)with_gate(connections, [&serve, a = std::move(a)]() mutable {
      return serve(std::move(a)).handle_exception([](std::exception_ptr) {});
    });
  }
  co_await connections.close();
}

}  // namespace reef::tcpip::testing
