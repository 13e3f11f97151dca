// Servers for the native stack's tests: a UDP socket that answers each
// datagram, and an accept loop that serves each connection.
#pragma once

#include <exception>
#include <string>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/gate.h"
#include "net/api.h"

namespace reef::tcpip::testing {

/// Answers each datagram on `channel` with `answer(datagram)` (a
/// std::string) until the channel is closed. A send that fails is
/// dropped.
template <typename Answer>
future<> serve_datagrams(udp_channel& channel, Answer answer) {
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

/// Accepts on `server` until accept() is aborted, serving each connection
/// with `serve(accept_result)` (a future; its failure is dropped);
/// resolves once every connection's service has ended.
template <typename Serve>
future<> serve_connections(server_socket& server, Serve serve) {
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
