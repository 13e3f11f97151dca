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

void udp_server::start(udp_channel c, noncopyable_function<std::string(const udp_datagram&)> answer) {
  channel = std::move(c);
  loop = serve_datagrams(channel, std::move(answer));
}

future<> udp_server::stop() {
  if (!loop) co_return;
  channel.close();
  co_await std::move(*loop);
  loop.reset();
  channel = udp_channel();
}

void tcp_server::start(server_socket s, noncopyable_function<future<>(accept_result)> serve) {
  socket = std::move(s);
  loop = serve_connections(socket, std::move(serve));
}

future<> tcp_server::stop() {
  if (!loop) co_return;
  socket.abort_accept();
  co_await std::move(*loop);
  loop.reset();
  socket = server_socket();
}

}  // namespace reef::tcpip::testing
