// The network API applications use, whatever stack carries the bytes.
//
//   server_socket server = listen(socket_address::parse("127.0.0.1:10000"));
//   accept_result conn = co_await server.accept();
//   input_stream<char> in = conn.connection.input();
//   output_stream<char> out = conn.connection.output();
//
// Addresses (IPv4 and IPv6), listening and connected sockets, and UDP
// channels. The objects here are handles over a stack's implementation
// (net/stack.h): the POSIX stack today, the native stack later, chosen at
// start-up without changing this code.
//
// Errors: failures of the stack's system calls are std::system_error naming
// the call and errno; a connection reset while reading reads as end of
// stream; one while writing fails the write.
//
// Thread rules: a socket, its streams and its channel belong to the shard
// that created them.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "core/future.h"
#include "core/iostream.h"
#include "core/temporary_buffer.h"
#include "net/packet.h"

namespace reef {

/// An IPv4 or IPv6 address (no port).
class inet_address {
 public:
  enum class family : std::uint8_t { ipv4, ipv6 };

  /// 0.0.0.0.
  inet_address() noexcept : _family(family::ipv4) { std::memset(&_v6, 0, sizeof(_v6)); }
  explicit inet_address(in_addr a) noexcept : inet_address() { _v4 = a; }
  explicit inet_address(in6_addr a) noexcept : _family(family::ipv6) { _v6 = a; }

  /// Parses dotted IPv4 ("127.0.0.1") or IPv6 ("::1", "fe80::1").
  /// Throws std::invalid_argument naming the text.
  static inet_address parse(std::string_view text);

  family kind() const noexcept { return _family; }
  bool is_ipv4() const noexcept { return _family == family::ipv4; }
  const in_addr& as_ipv4() const noexcept { return _v4; }
  const in6_addr& as_ipv6() const noexcept { return _v6; }
  bool is_loopback() const noexcept;
  bool is_any() const noexcept;

  std::string to_string() const;

  friend bool operator==(const inet_address& a, const inet_address& b) noexcept;
  friend bool operator<(const inet_address& a, const inet_address& b) noexcept;
  std::size_t hash() const noexcept;

 private:
  family _family;
  union {
    in_addr _v4;
    in6_addr _v6;
  };
};

/// Where a socket listens or connects: an IP address and a port, or a
/// Unix-domain stream socket's path.
class socket_address {
 public:
  /// The longest Unix-domain path (sockaddr_un's sun_path, less its NUL).
  static constexpr std::size_t unix_path_max = 107;

  /// 0.0.0.0:0.
  socket_address() noexcept;
  socket_address(inet_address address, std::uint16_t port) noexcept {
    if (address.is_ipv4()) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&_storage);
      sin->sin_family = AF_INET;
      sin->sin_addr = address.as_ipv4();
      sin->sin_port = htons(port);
      _length = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&_storage);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_addr = address.as_ipv6();
      sin6->sin6_port = htons(port);
      _length = sizeof(sockaddr_in6);
    }
  }
  /// From a kernel address (AF_INET, AF_INET6 or AF_UNIX).
  socket_address(const sockaddr* sa, socklen_t length) noexcept;
  // (Copies move only the bytes an IP address uses, not the 128 of a
  // sockaddr_storage: datagrams carry one each.)
  socket_address(const socket_address& o) noexcept : _length(o._length) { copy_storage(o); }
  socket_address& operator=(const socket_address& o) noexcept {
    if (this != &o) {
      _storage = sockaddr_storage{};
      _length = o._length;
      copy_storage(o);
    }
    return *this;
  }

  /// A Unix-domain socket at `path` in the filesystem, or, for "@name", in
  /// Linux's abstract namespace (no file; gone with its last socket).
  /// Throws std::invalid_argument for an empty path or one longer than
  /// unix_path_max, or one holding a NUL.
  static socket_address unix_socket(std::string_view path);

  /// Parses "127.0.0.1:80", "[::1]:80" or "unix:/run/app.sock" (no names:
  /// resolve with net/dns first). Throws std::invalid_argument naming the
  /// text.
  static socket_address parse(std::string_view text);

  /// The IP address and port (0.0.0.0 and 0 for a Unix-domain address).
  inet_address address() const noexcept;
  std::uint16_t port() const noexcept;
  /// Whether this is a Unix-domain address, and its path ("@name" for an
  /// abstract one; empty for an unnamed peer).
  bool is_unix() const noexcept { return _storage.ss_family == AF_UNIX; }
  std::string unix_path() const;
  const sockaddr* as_sockaddr() const noexcept { return reinterpret_cast<const sockaddr*>(&_storage); }
  socklen_t length() const noexcept { return _length; }
  int family() const noexcept { return _storage.ss_family; }

  /// "127.0.0.1:80", "[::1]:80" or "unix:/run/app.sock".
  std::string to_string() const;

  friend bool operator==(const socket_address& a, const socket_address& b) noexcept;
  std::size_t hash() const noexcept;

 private:
  // REQUIRES: _storage is all zeros (the bytes past o's IP address are).
  void copy_storage(const socket_address& o) noexcept {
    static_assert(sizeof(sockaddr_in6) <= ip_bytes && ip_bytes <= sizeof(sockaddr_storage));
    auto* to = reinterpret_cast<char*>(&_storage);
    const auto* from = reinterpret_cast<const char*>(&o._storage);
    std::memcpy(to, from, ip_bytes);
    if (o._storage.ss_family == AF_UNIX) [[unlikely]] {
      std::memcpy(to + ip_bytes, from + ip_bytes, sizeof(_storage) - ip_bytes);
    }
  }
  static constexpr std::size_t ip_bytes = 32;  // a sockaddr_in6, rounded up

  sockaddr_storage _storage{};
  socklen_t _length = 0;
};

std::ostream& operator<<(std::ostream& os, const inet_address& a);
std::ostream& operator<<(std::ostream& os, const socket_address& a);

/// TCP keepalive's three settings (TCP_KEEPIDLE, TCP_KEEPINTVL,
/// TCP_KEEPCNT): after `idle` without traffic, a probe every `interval`;
/// after `count` unanswered probes the connection is dropped.
struct tcp_keepalive_params {
  std::chrono::seconds idle{7200};
  std::chrono::seconds interval{75};
  unsigned count = 9;
};

// --- Implementations behind the handles (what a stack provides). --------------

class connected_socket_impl {
 public:
  virtual ~connected_socket_impl() = default;
  virtual data_source<char> source() = 0;
  virtual data_sink<char> sink() = 0;
  virtual void shutdown_input() = 0;
  virtual void shutdown_output() = 0;
  virtual void set_nodelay(bool on) = 0;
  virtual bool get_nodelay() const = 0;
  virtual void set_keepalive(bool on) = 0;
  virtual bool get_keepalive() const = 0;
  virtual void set_keepalive_parameters(const tcp_keepalive_params& p) = 0;
  virtual tcp_keepalive_params get_keepalive_parameters() const = 0;
  virtual void set_send_buffer_size(int bytes) = 0;
  virtual int get_send_buffer_size() const = 0;
  virtual void set_receive_buffer_size(int bytes) = 0;
  virtual int get_receive_buffer_size() const = 0;
  virtual void set_linger(std::optional<std::chrono::seconds> linger) = 0;
  virtual std::optional<std::chrono::seconds> get_linger() const = 0;
  virtual socket_address local_address() const = 0;
  virtual socket_address remote_address() const = 0;
};

/// A connection: two byte streams. The connection ends when the socket and
/// both streams are gone (closing a stream closes that direction only for
/// output; the descriptor lives until all three are destroyed).
class connected_socket {
 public:
  connected_socket() noexcept = default;
  explicit connected_socket(std::unique_ptr<connected_socket_impl> impl) noexcept
      : _impl(std::move(impl)) {}
  connected_socket(connected_socket&&) noexcept = default;
  connected_socket& operator=(connected_socket&&) noexcept = default;

  /// The bytes the peer sends. Call once.
  input_stream<char> input() { return input_stream<char>(_impl->source()); }
  /// The bytes sent to the peer, gathered up to `buffer_size` (default: the
  /// stack's), with `options` (batch_flushes). Call once.
  output_stream<char> output(std::size_t buffer_size = 0, output_stream_options options = {}) {
    return output_stream<char>(_impl->sink(), buffer_size, options);
  }
  /// No more reading (the peer's further bytes are discarded).
  void shutdown_input() { _impl->shutdown_input(); }
  /// No more writing: the peer reads end of stream.
  void shutdown_output() { _impl->shutdown_output(); }
  /// TCP_NODELAY: send small writes at once.
  void set_nodelay(bool on) { _impl->set_nodelay(on); }
  bool get_nodelay() const { return _impl->get_nodelay(); }
  /// SO_KEEPALIVE.
  void set_keepalive(bool on) { _impl->set_keepalive(on); }
  bool get_keepalive() const { return _impl->get_keepalive(); }
  /// When keepalive probes go and when they give up (TCP only).
  void set_keepalive_parameters(const tcp_keepalive_params& p) { _impl->set_keepalive_parameters(p); }
  tcp_keepalive_params get_keepalive_parameters() const { return _impl->get_keepalive_parameters(); }
  /// SO_SNDBUF / SO_RCVBUF: the kernel's buffers for this connection, in
  /// bytes (the kernel may round or double what is asked; get_* says what
  /// it took).
  void set_send_buffer_size(int bytes) { _impl->set_send_buffer_size(bytes); }
  int get_send_buffer_size() const { return _impl->get_send_buffer_size(); }
  void set_receive_buffer_size(int bytes) { _impl->set_receive_buffer_size(bytes); }
  int get_receive_buffer_size() const { return _impl->get_receive_buffer_size(); }
  /// SO_LINGER: with a time, closing waits up to it for unsent data to
  /// go (0: closing resets the connection at once, dropping what is
  /// unsent); nullopt (the default): closing returns at once and the
  /// kernel sends in the background.
  void set_linger(std::optional<std::chrono::seconds> linger) { _impl->set_linger(linger); }
  std::optional<std::chrono::seconds> get_linger() const { return _impl->get_linger(); }
  socket_address local_address() const { return _impl->local_address(); }
  socket_address remote_address() const { return _impl->remote_address(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_impl); }

 private:
  std::unique_ptr<connected_socket_impl> _impl;
};

/// What server_socket::accept() yields.
struct accept_result {
  connected_socket connection;
  socket_address remote_address;
};

class server_socket_impl {
 public:
  virtual ~server_socket_impl() = default;
  virtual future<accept_result> accept() = 0;
  virtual void abort_accept() = 0;
  virtual socket_address local_address() const = 0;
  /// abort_accept(), then whatever the socket runs in the background ends.
  virtual future<> close() {
    abort_accept();
    return make_ready_future<>();
  }
};

/// A listening socket.
class server_socket {
 public:
  server_socket() noexcept = default;
  explicit server_socket(std::unique_ptr<server_socket_impl> impl) noexcept
      : _impl(std::move(impl)) {}
  server_socket(server_socket&&) noexcept = default;
  server_socket& operator=(server_socket&&) noexcept = default;

  /// The next connection. One accept() at a time. After abort_accept(),
  /// and on a socket that does not listen (made empty, or moved from), it
  /// fails (std::system_error with ECONNABORTED).
  future<accept_result> accept();
  /// Stops accepting: the pending and later accept() fail. Nothing on a
  /// socket that does not listen.
  void abort_accept() {
    if (_impl) _impl->abort_accept();
  }
  /// Stops accepting (as abort_accept()) and resolves once the socket's
  /// background work has ended (round-robin balancing runs an accept loop
  /// on shard 0, which hands connections out). Destroying the socket
  /// without it is safe too; this is for a caller that wants to know.
  future<> close() { return _impl ? _impl->close() : make_ready_future<>(); }
  /// Where it listens (with the port the kernel picked, if 0 was asked).
  socket_address local_address() const { return _impl->local_address(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_impl); }

 private:
  std::unique_ptr<server_socket_impl> _impl;
};

/// How listen() shares connections among shards.
enum class load_balancing : std::uint8_t {
  /// Every shard listens on the port (SO_REUSEPORT); the kernel spreads
  /// connections by hash.
  kernel,
  /// Shard 0 accepts; connections go to the listening shards in turn.
  round_robin,
};

struct listen_options {
  bool reuse_address = true;
  /// The kernel's queue of connections not yet accepted.
  int backlog = 1024;
  /// How connections are shared among the shards that listen. A
  /// Unix-domain address cannot be shared by the kernel (no SO_REUSEPORT):
  /// with several shards listening on one, use round_robin.
  load_balancing balancing = load_balancing::kernel;
};

class abort_source;

/// How connect() connects.
struct connect_options {
  /// The local address to connect from (an address of this host, or a
  /// port); unset: the kernel picks.
  std::optional<socket_address> local;
  /// A connect not done by then fails with timed_out_error (core/
  /// with_timeout.h).
  std::optional<std::chrono::milliseconds> timeout;
  /// When it is aborted, a connect not yet done fails with
  /// abort_requested_exception. Must outlive the connect.
  abort_source* abort = nullptr;
};

/// A datagram received on a udp_channel.
struct udp_datagram {
  temporary_buffer<char> data;
  socket_address source;
};

class udp_channel_impl {
 public:
  virtual ~udp_channel_impl() = default;
  /// (`p` by rvalue reference: the handle's send() moved it already.)
  virtual future<> send(const socket_address& destination, packet&& p) = 0;
  virtual future<udp_datagram> receive() = 0;
  virtual socket_address local_address() const = 0;
  virtual void close() = 0;
};

/// A UDP socket.
class udp_channel {
 public:
  /// The largest datagram receive() returns whole (longer ones are cut).
  static constexpr std::size_t datagram_max = 65536;

  udp_channel() noexcept = default;
  explicit udp_channel(std::unique_ptr<udp_channel_impl> impl) noexcept : _impl(std::move(impl)) {}
  udp_channel(udp_channel&&) noexcept = default;
  udp_channel& operator=(udp_channel&&) noexcept = default;

  /// Sends one datagram (the packet's fragments, gathered).
  future<> send(const socket_address& destination, packet p) {
    return _impl->send(destination, std::move(p));
  }
  future<> send(const socket_address& destination, std::string_view text) {
    return send(destination, packet(temporary_buffer<char>::copy_of(text)));
  }
  /// The next datagram. One receive() at a time.
  future<udp_datagram> receive() { return _impl->receive(); }
  socket_address local_address() const { return _impl->local_address(); }
  /// Stops the channel: a pending receive() fails.
  void close() { _impl->close(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_impl); }

 private:
  std::unique_ptr<udp_channel_impl> _impl;
};

}  // namespace reef

template <>
struct std::hash<reef::inet_address> {
  std::size_t operator()(const reef::inet_address& a) const noexcept { return a.hash(); }
};

template <>
struct std::hash<reef::socket_address> {
  std::size_t operator()(const reef::socket_address& a) const noexcept { return a.hash(); }
};
