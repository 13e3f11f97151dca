// Servers for the native stack's tests: a UDP socket that answers each
// datagram, and an accept loop that serves each connection.
#pragma once

// (Defined in servers.cc, not as templates here: clang 14 cannot emit a
// coroutine template's frame under the sanitizers.)
#include <optional>
#include <string>

#include "core/function.h"
#include "core/future.h"
#include "net/api.h"

namespace reef::tcpip::testing {

/// Answers each datagram on `channel` with `answer(datagram)` until the
/// channel is closed. A send that fails is dropped.
future<> serve_datagrams(udp_channel& channel, noncopyable_function<std::string(const udp_datagram&)> answer);

/// Accepts on `server` until accept() is aborted, serving each connection
/// with `serve` (its failure is dropped); resolves once every
/// connection's service has ended.
future<> serve_connections(server_socket& server, noncopyable_function<future<>(accept_result)> serve);

/// A UDP socket answered by serve_datagrams() until stop().
struct udp_server {
  udp_channel channel;
  std::optional<future<>> loop;

  void start(udp_channel c, noncopyable_function<std::string(const udp_datagram&)> answer);
  /// Closes the socket and waits for the loop; nothing if not started.
  future<> stop();
};

/// A listening socket served by serve_connections() until stop().
struct tcp_server {
  server_socket socket;
  std::optional<future<>> loop;

  void start(server_socket s, noncopyable_function<future<>(accept_result)> serve);
  /// Aborts accept() and waits for the loop and its connections; nothing
  /// if not started.
  future<> stop();
};

}  // namespace reef::tcpip::testing
