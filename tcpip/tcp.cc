#include "tcpip/tcp.h"

#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/abort_source.h"
#include "core/coroutine.h"
#include "core/timer.h"
#include "core/with_timeout.h"
#include "tcpip/checksum.h"
#include "tcpip/udp.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

using namespace std::chrono_literals;

std::system_error error(int code, const char* what) { return std::system_error(code, std::system_category(), what); }

// SYN cookies (RFC 4987): the ISN we answer a SYN with carries the time
// (5 bits of a 64-second counter), the peer's MSS (3 bits, an index into
// this table) and 24 bits of a keyed hash of the 4-tuple, the counter and
// the peer's ISN. Window scale and SACK travel in the low bits of our
// TSval, where the peer offered timestamps (as Linux does).
constexpr std::uint16_t cookie_mss[] = {536, 1220, 1440, 1460, 4312, 8960};
constexpr std::uint32_t cookie_ts_mask = 0x3f;
constexpr std::uint32_t cookie_ts_present = 0x20;
constexpr std::uint32_t cookie_ts_sack = 0x10;

std::uint32_t cookie_counter(tcp_time now) noexcept {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count() / 64);
}

std::uint8_t shift_for(std::uint32_t buffer) noexcept {
  std::uint8_t s = 0;
  while (s < tcp_options::window_scale_max && (buffer >> s) > 65535) ++s;
  return s;
}

}  // namespace

tcp_layer_stats& tcp_layer_stats::operator+=(const tcp_layer_stats& o) noexcept {
  static_assert(sizeof(tcp_layer_stats) == sizeof(tcp_stats) + 16 * sizeof(std::uint64_t), "add the new count here");
  segments += o.segments;
  header_errors += o.header_errors;
  bad_checksums += o.bad_checksums;
  not_for_us += o.not_for_us;
  resets_for_no_socket += o.resets_for_no_socket;
  syn_cookies_sent += o.syn_cookies_sent;
  syn_cookies_accepted += o.syn_cookies_accepted;
  syn_cookies_rejected += o.syn_cookies_rejected;
  syns_dropped += o.syns_dropped;
  accept_overflows += o.accept_overflows;
  memory_drops += o.memory_drops;
  time_wait_evicted += o.time_wait_evicted;
  connections_opened += o.connections_opened;
  connections_closed += o.connections_closed;
  connections += o.connections;
  timers_armed += o.timers_armed;
  buffered_bytes += o.buffered_bytes;
  return *this;
}

// --- What the layer keeps per connection and per listener. ------------------------

struct tcp_layer::listener {
  tcp_layer* layer;  // null once the layer is gone
  std::uint16_t port;
  std::size_t backlog;
  circular_buffer<lw_shared_ptr<entry>> ready;  // established, not yet accepted
  std::size_t half_open = 0;                    // SYN-RECEIVED, ours
  std::optional<promise<>> waiter;              // an accept() with nothing ready
  bool aborted = false;

  void wake() noexcept {
    if (!waiter) return;
    promise<> p = std::move(*waiter);
    waiter.reset();
    p.set_value();
  }
};

struct tcp_layer::entry {
  entry(tcp_layer& l, const tcp_config& config, const tcp_tuple& t, tcp_seq isn)
      : layer(&l),
        conn(config, t, isn,
             [this](tcp_header& h, packet&& p) {
               if (layer != nullptr) {
                 layer->transmit(conn.tuple().local_ip, conn.tuple().remote_ip, h, std::move(p), conn.segment_size());
               }
             },
             l._segments) {
    conn.set_on_change([this] { wake(); });
  }

  // Every waiter looks again (each waits for its own condition in a loop).
  void wake() noexcept {
    for (auto* w : {&readable, &writable, &connected}) {
      if (!*w) continue;
      promise<> p = std::move(**w);
      w->reset();
      p.set_value();
    }
  }

  tcp_layer* layer;  // null once the layer is gone
  tcp_connection conn;
  timer<steady_clock_type> clock;
  tcp_time armed = tcp_time_never;
  lw_shared_ptr<listener> owner;  // a passive connection's listener, until accepted
  bool half_open = false;         // counted in owner->half_open
  bool queued = false;            // in owner->ready
  bool in_table = true;
  bool listed_time_wait = false;  // in the layer's _time_wait
  bool input_shut = false;
  unsigned handles = 0;           // the socket and its streams
  std::size_t counted = 0;        // bytes counted in the layer's _buffered
  std::optional<std::chrono::seconds> linger;
  std::optional<promise<>> readable;
  std::optional<promise<>> writable;
  std::optional<promise<>> connected;
};

// --- The application's handles. -------------------------------------------------

class native_tcp_source final : public data_source_impl<char> {
 public:
  explicit native_tcp_source(lw_shared_ptr<tcp_layer::entry> e) : _e(std::move(e)) { ++_e->handles; }
  ~native_tcp_source() override {
    if (_e->layer != nullptr) {
      _e->layer->drop_handle(_e);
    } else {
      --_e->handles;
    }
  }

  future<temporary_buffer<char>> get() override { return read(_e); }

 private:
  static future<temporary_buffer<char>> read(lw_shared_ptr<tcp_layer::entry> e);

  lw_shared_ptr<tcp_layer::entry> _e;
};

// (Out of the class: a coroutine defined inline cannot be assembled by
// clang 14 under the sanitizers.)
future<temporary_buffer<char>> native_tcp_source::read(lw_shared_ptr<tcp_layer::entry> e) {
  for (;;) {
    if (e->layer == nullptr || e->input_shut) co_return temporary_buffer<char>();
    temporary_buffer<char> b = e->conn.read(tcp_layer::now());
    e->layer->after(e);
    if (!b.empty()) co_return b;
    // End of stream: the peer's FIN, or a reset (which reads as one).
    if (e->conn.eof() || e->conn.state() == tcp_state::closed) co_return temporary_buffer<char>();
    e->readable.emplace();
    co_await e->readable->get_future();
  }
}

class native_tcp_sink final : public data_sink_impl<char> {
 public:
  explicit native_tcp_sink(lw_shared_ptr<tcp_layer::entry> e) : _e(std::move(e)) { ++_e->handles; }
  ~native_tcp_sink() override {
    if (_e->layer != nullptr) {
      _e->layer->drop_handle(_e);
    } else {
      --_e->handles;
    }
  }

  future<> put(temporary_buffer<char> buf) override {
    if (buf.empty()) return make_ready_future<>();
    return write(_e, packet(std::move(buf)));
  }

  future<> put(std::vector<temporary_buffer<char>> bufs) override {
    packet p;
    try {
      for (auto& b : bufs) {
        if (!b.empty()) p.append(std::move(b));
      }
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
    if (p.len() == 0) return make_ready_future<>();
    return write(_e, std::move(p));
  }

  future<> close() override {
    if (_e->layer != nullptr) {
      _e->conn.shutdown_output(tcp_layer::now());
      _e->layer->after(_e);
    }
    return make_ready_future<>();
  }

  std::size_t buffer_size() const noexcept override { return 32768; }

 private:
  // Waits for room in the send buffer (and in the shard's budget, unless
  // this connection holds nothing yet), then queues it all.
  static future<> write(lw_shared_ptr<tcp_layer::entry> e, packet p);

  lw_shared_ptr<tcp_layer::entry> _e;
};

// (Out of the class: a coroutine defined inline cannot be assembled by
// clang 14 under the sanitizers.)
future<> native_tcp_sink::write(lw_shared_ptr<tcp_layer::entry> e, packet p) {
  for (;;) {
    if (e->layer == nullptr) throw error(ECONNABORTED, "send: the stack has stopped");
    if (!e->conn.can_send()) {
      const std::error_code why = e->conn.error();
      throw error(why ? why.value() : EPIPE, "send");
    }
    if (e->conn.send_space() > 0 && (!e->layer->over_memory() || e->conn.send_queued() == 0)) break;
    e->writable.emplace();
    co_await e->writable->get_future();
  }
  e->conn.send(std::move(p), tcp_layer::now());
  e->layer->after(e);
}

class native_tcp_socket final : public connected_socket_impl {
 public:
  explicit native_tcp_socket(lw_shared_ptr<tcp_layer::entry> e) : _e(std::move(e)) { ++_e->handles; }
  ~native_tcp_socket() override {
    if (_e->layer != nullptr) {
      _e->layer->drop_handle(_e);
    } else {
      --_e->handles;
    }
  }

  data_source<char> source() override { return data_source<char>(std::make_unique<native_tcp_source>(_e)); }
  data_sink<char> sink() override { return data_sink<char>(std::make_unique<native_tcp_sink>(_e)); }
  void shutdown_input() override {
    _e->input_shut = true;
    if (_e->layer == nullptr) return;
    _e->conn.shutdown_input(tcp_layer::now());
    _e->layer->after(_e);
  }
  void shutdown_output() override {
    if (_e->layer == nullptr) return;
    _e->conn.shutdown_output(tcp_layer::now());
    _e->layer->after(_e);
  }
  void set_nodelay(bool on) override {
    if (_e->layer == nullptr) return;
    _e->conn.set_no_delay(on, tcp_layer::now());
    _e->layer->after(_e);
  }
  bool get_nodelay() const override { return _e->conn.no_delay(); }
  void set_keepalive(bool on) override {
    if (_e->layer == nullptr) return;
    _e->conn.set_keepalive(on, tcp_layer::now());
    _e->layer->after(_e);
  }
  bool get_keepalive() const override { return _e->conn.keepalive(); }
  void set_keepalive_parameters(const tcp_keepalive_params& p) override {
    // The POSIX stack's bounds (Linux's), so that a program behaves alike
    // on both.
    auto check = [](long long v, const char* what) {
      if (v <= 0 || v > 32767) {
        throw std::invalid_argument(std::string("keepalive ") + what + " must be 1..32767, not " + std::to_string(v));
      }
    };
    check(p.idle.count(), "idle seconds");
    check(p.interval.count(), "interval seconds");
    check(p.count, "probe count");
    if (_e->layer == nullptr) return;
    _e->conn.set_keepalive_params(p, tcp_layer::now());
    _e->layer->after(_e);
  }
  tcp_keepalive_params get_keepalive_parameters() const override { return _e->conn.keepalive_params(); }
  void set_send_buffer_size(int bytes) override {
    if (bytes <= 0) throw std::invalid_argument("send buffer size must be positive, not " + std::to_string(bytes));
    _e->conn.set_send_buffer(static_cast<std::uint32_t>(bytes), tcp_layer::now());
  }
  int get_send_buffer_size() const override { return static_cast<int>(_e->conn.send_buffer()); }
  void set_receive_buffer_size(int bytes) override {
    if (bytes <= 0) throw std::invalid_argument("receive buffer size must be positive, not " + std::to_string(bytes));
    _e->conn.set_receive_buffer(static_cast<std::uint32_t>(bytes));
  }
  int get_receive_buffer_size() const override { return static_cast<int>(_e->conn.receive_buffer()); }
  void set_linger(std::optional<std::chrono::seconds> linger) override {
    if (linger && (linger->count() < 0 || linger->count() > 65535)) {
      throw std::invalid_argument("linger must be 0..65535 s, not " + std::to_string(linger->count()));
    }
    _e->linger = linger;
  }
  std::optional<std::chrono::seconds> get_linger() const override { return _e->linger; }
  socket_address local_address() const override {
    return ipv4_socket_address(_e->conn.tuple().local_ip, _e->conn.tuple().local_port);
  }
  socket_address remote_address() const override {
    return ipv4_socket_address(_e->conn.tuple().remote_ip, _e->conn.tuple().remote_port);
  }

 private:
  lw_shared_ptr<tcp_layer::entry> _e;
};

// The socket over an established entry (for accept() and connect());
// if it cannot be made, the entry, which nobody else holds, is reset and
// let go.
std::unique_ptr<connected_socket_impl> socket_for(const lw_shared_ptr<tcp_layer::entry>& e) {
  try {
    return std::make_unique<native_tcp_socket>(e);
  } catch (...) {
    tcp_layer::abort_entry(e);
    throw;
  }
}

class native_tcp_server_socket final : public server_socket_impl {
 public:
  // `address` 0: the interface's, whatever it is when asked (DHCP may
  // give it one later).
  native_tcp_server_socket(lw_shared_ptr<tcp_layer::listener> l, std::uint32_t address)
      : _l(std::move(l)), _address(address) {}
  ~native_tcp_server_socket() override { abort_accept(); }

  future<accept_result> accept() override { return next(_l); }

  void abort_accept() override {
    if (_l->aborted) return;
    if (_l->layer != nullptr) {
      _l->layer->close_listener(*_l);
    } else {
      _l->aborted = true;
    }
    _l->wake();
  }

  socket_address local_address() const override {
    const std::uint32_t address = _address == 0 && _l->layer != nullptr ? _l->layer->_ip.address() : _address;
    // (Once closed, 0.0.0.0 for an address that was the interface's.)
    return ipv4_socket_address(address, _l->port);
  }

 private:
  static future<accept_result> next(lw_shared_ptr<tcp_layer::listener> l);

  lw_shared_ptr<tcp_layer::listener> _l;
  std::uint32_t _address;
};

// (Out of the class: a coroutine defined inline cannot be assembled by
// clang 14 under the sanitizers.)
future<accept_result> native_tcp_server_socket::next(lw_shared_ptr<tcp_layer::listener> l) {
  for (;;) {
    if (l->aborted || l->layer == nullptr) throw error(ECONNABORTED, "accept");
    if (!l->ready.empty()) {
      lw_shared_ptr<tcp_layer::entry> e = std::move(l->ready.front());
      l->ready.pop_front();
      e->queued = false;
      e->owner = nullptr;
      const tcp_tuple& t = e->conn.tuple();
      socket_address peer = ipv4_socket_address(t.remote_ip, t.remote_port);
      co_return accept_result{connected_socket(socket_for(e)), std::move(peer)};
    }
    l->waiter.emplace();
    co_await l->waiter->get_future();
  }
}

// --- The layer. -----------------------------------------------------------------

tcp_layer::tcp_layer(ipv4_interface& ip, tcp_layer_options options, bool own_handler)
    : _ip(ip),
      _options(std::move(options)),
      _own_handler(own_handler),
      _cookie_secret(random_secret()),
      _next_ephemeral(_options.limits.ephemeral_first) {
  if (_options.limits.ephemeral_first == 0 || _options.limits.ephemeral_first > _options.limits.ephemeral_last) {
    throw std::invalid_argument("tcp: the ephemeral port range is empty");
  }
  // (Linux's floor for TCP_MAXSEG: a smaller MSS makes segments
  // mostly header, and a device's TSO thousands of pieces.)
  if (_options.mss && *_options.mss < 88) {
    throw std::invalid_argument("tcp: an MSS of " + std::to_string(*_options.mss) + " is below the least, 88");
  }
  const device_info& device = _ip.info();
  const std::uint16_t mtu_mss = static_cast<std::uint16_t>(std::max<int>(device.mtu - 40, 28));
  _options.connection.mss = std::min(_options.mss.value_or(mtu_mss), mtu_mss);
  // With TSO (which needs the device to sum each piece it cuts), a
  // segment handed down carries up to what one IPv4 datagram holds, less
  // the largest headers.
  _options.connection.tso_bytes =
      device.offloads.tso && device.offloads.tx_checksum ? ipv4_header::max_datagram - 20 - 60 : 0;
  if (_own_handler) {
    _ip.set_handler(static_cast<std::uint8_t>(ip_protocol::tcp),
                    [this](const ipv4_header& h, packet&& data, checksum_status checksum) {
                      receive(h, std::move(data), checksum);
                    });
  }
}

tcp_layer::~tcp_layer() {
  if (_own_handler) _ip.set_handler(static_cast<std::uint8_t>(ip_protocol::tcp), nullptr);
  for (auto& [port, l] : _listeners) {
    l->aborted = true;
    l->layer = nullptr;
    l->ready.clear();
    l->wake();
  }
  _listeners.clear();
  for (auto& [t, e] : _connections) {
    e->clock.cancel();
    e->layer = nullptr;
    e->owner = nullptr;
    e->wake();
  }
  _connections.clear();
}

tcp_time tcp_layer::now() noexcept {
  return std::chrono::duration_cast<tcp_time>(steady_clock_type::now().time_since_epoch());
}

server_socket tcp_layer::listen(const socket_address& local, const listen_options& options) {
  if (local.family() != AF_INET) throw error(EAFNOSUPPORT, "listen: the native stack speaks IPv4");
  const auto* sin = reinterpret_cast<const sockaddr_in*>(local.as_sockaddr());
  const std::uint32_t address = ntohl(sin->sin_addr.s_addr);
  if (address != 0 && address != _ip.address()) throw error(EADDRNOTAVAIL, "listen: not this interface's address");
  std::uint16_t port = local.port();
  if (port == 0) {
    // Any port: an ephemeral one nobody listens on here.
    for (std::uint32_t p = _options.limits.ephemeral_first; p <= _options.limits.ephemeral_last && port == 0; ++p) {
      if (!_listeners.contains(static_cast<std::uint16_t>(p))) port = static_cast<std::uint16_t>(p);
    }
    if (port == 0) throw error(EADDRINUSE, "listen: no ephemeral port left");
  }
  if (_listeners.contains(port)) throw error(EADDRINUSE, "listen");
  auto l = make_lw_shared<listener>();
  l->layer = this;
  l->port = port;
  l->backlog = static_cast<std::size_t>(std::max(options.backlog, 1));
  _listeners.emplace(port, l);
  return server_socket(std::make_unique<native_tcp_server_socket>(std::move(l), address));
}

void tcp_layer::close_listener(listener& l) noexcept {
  l.aborted = true;
  l.layer = nullptr;  // (its socket may outlive the layer)
  auto it = _listeners.find(l.port);
  if (it != _listeners.end() && it->second.get() == &l) _listeners.erase(it);
  // Connections nobody will accept: reset.
  while (!l.ready.empty()) {
    lw_shared_ptr<entry> e = std::move(l.ready.front());
    l.ready.pop_front();
    e->queued = false;
    e->owner = nullptr;
    e->conn.abort(now());
    after(e);
  }
  l.wake();
}

future<connected_socket> tcp_layer::connect(const socket_address& remote, const connect_options& options) {
  lw_shared_ptr<entry> e;
  try {
    if (remote.family() != AF_INET) throw error(EAFNOSUPPORT, "connect: the native stack speaks IPv4");
    if (options.abort != nullptr && options.abort->abort_requested()) throw abort_requested_exception();
    const auto* sin = reinterpret_cast<const sockaddr_in*>(remote.as_sockaddr());
    const std::uint32_t remote_ip = ntohl(sin->sin_addr.s_addr);
    const std::uint16_t remote_port = remote.port();
    if (remote_ip == 0 || remote_port == 0) throw error(EADDRNOTAVAIL, "connect: no address or port");
    const std::uint32_t local_ip = _ip.address();
    if (local_ip == 0) throw error(ENETUNREACH, "connect: the interface has no address yet");
    std::uint16_t local_port = 0;
    if (options.local) {
      if (options.local->family() != AF_INET) throw error(EAFNOSUPPORT, "connect: the native stack speaks IPv4");
      const auto* lin = reinterpret_cast<const sockaddr_in*>(options.local->as_sockaddr());
      const std::uint32_t asked = ntohl(lin->sin_addr.s_addr);
      if (asked != 0 && asked != local_ip) throw error(EADDRNOTAVAIL, "connect: not this interface's address");
      local_port = options.local->port();
    }
    if (_connections.size() >= _options.limits.connections_max && !evict_time_wait()) {
      throw error(ENOBUFS, "connect: too many connections");
    }
    tcp_tuple t{local_ip, local_port, remote_ip, remote_port};
    if (local_port != 0) {
      if (_connections.contains(t)) throw error(EADDRINUSE, "connect");
    } else {
      const unsigned range = unsigned{_options.limits.ephemeral_last} - _options.limits.ephemeral_first + 1;
      for (unsigned i = 0; i < range && t.local_port == 0; ++i) {
        const std::uint16_t port = _next_ephemeral;
        _next_ephemeral = port == _options.limits.ephemeral_last ? _options.limits.ephemeral_first
                                                                 : static_cast<std::uint16_t>(port + 1);
        if (_ephemeral_ok && !_ephemeral_ok(port, remote_ip, remote_port)) continue;
        t.local_port = port;
        if (_connections.contains(t)) t.local_port = 0;
      }
      if (t.local_port == 0) throw error(EADDRNOTAVAIL, "connect: no ephemeral port left");
    }
    const tcp_time at = now();
    e = make_entry(t, _isn(t.local_ip, t.local_port, t.remote_ip, t.remote_port, at));
    e->conn.connect(at);
    after(e);
  } catch (...) {
    return make_exception_future<connected_socket>(std::current_exception());
  }
  return wait_connected(std::move(e), options.timeout, options.abort);
}

future<connected_socket> tcp_layer::wait_connected(lw_shared_ptr<entry> e,
                                                  std::optional<std::chrono::milliseconds> timeout,
                                                  abort_source* abort) {
  std::exception_ptr early;
  auto end_early = [&early, raw = e.get()](std::exception_ptr why) {
    if (early) return;
    early = std::move(why);
    raw->wake();
  };
  timer<lowres_clock> deadline;
  std::optional<abort_source::subscription> aborted;
  if (timeout) {
    deadline.set_callback([&end_early] { end_early(std::make_exception_ptr(timed_out_error())); });
    deadline.arm(lowres_clock::now() + *timeout);
  }
  if (abort != nullptr) {
    aborted = abort->subscribe([&end_early] { end_early(std::make_exception_ptr(abort_requested_exception())); });
  }
  while (!early && e->layer != nullptr &&
         (e->conn.state() == tcp_state::syn_sent || e->conn.state() == tcp_state::syn_received)) {
    e->connected.emplace();
    co_await e->connected->get_future();
  }
  deadline.cancel();
  aborted.reset();
  if (early) {
    if (e->layer != nullptr) {
      e->conn.abort(now());
      e->layer->after(e);
    }
    std::rethrow_exception(early);
  }
  const std::error_code why = e->conn.error();
  if (!e->conn.was_established()) {
    throw error(why ? why.value() : (e->layer == nullptr ? ECONNABORTED : ECONNREFUSED), "connect");
  }
  // Established, then gone before we looked (reset, or the stack stopped).
  if (e->layer == nullptr) throw error(why ? why.value() : ECONNABORTED, "connect");
  co_return connected_socket(socket_for(e));
}

lw_shared_ptr<tcp_layer::entry> tcp_layer::make_entry(const tcp_tuple& t, tcp_seq isn) {
  auto e = make_lw_shared<entry>(*this, _options.connection, t, isn);
  e->clock.set_callback([this, raw = e.get()] {
    auto it = _connections.find(raw->conn.tuple());
    if (it == _connections.end() || it->second.get() != raw) return;
    on_timer(it->second);
  });
  _connections.emplace(t, e);
  ++_stats.connections_opened;
  return e;
}

void tcp_layer::on_timer(const lw_shared_ptr<entry>& held) noexcept {
  lw_shared_ptr<entry> e = held;  // (the table's may go inside)
  if (e->armed != tcp_time_never) {
    e->armed = tcp_time_never;
    --_timers_armed;
  }
  try {
    e->conn.on_timer(now());
  } catch (...) {
    abort_entry(e);  // no memory to go on with it
    return;
  }
  after(e);
}

void tcp_layer::abort_entry(const lw_shared_ptr<entry>& e) noexcept {
  if (e->layer == nullptr) return;
  try {
    e->conn.abort(now());
  } catch (...) {
  }
  e->layer->after(e);
}

void tcp_layer::after(const lw_shared_ptr<entry>& e) noexcept {
  if (e->layer == nullptr || !e->in_table) return;
  const std::size_t held = e->conn.send_queued() + e->conn.readable() + e->conn.held();
  _buffered = _buffered - e->counted + held;
  e->counted = held;
  tcp_connection& c = e->conn;
  if (e->half_open && c.state() != tcp_state::syn_received) {
    // The handshake ended: to the accept queue, or gone.
    e->half_open = false;
    listener& l = *e->owner;
    --l.half_open;
    if (c.was_established() && !l.aborted) {
      if (l.ready.size() >= l.backlog) {
        ++_stats.accept_overflows;
        e->owner = nullptr;
        c.abort(now());
      } else {
        try {
          l.ready.push_back(e);
          e->queued = true;
          l.wake();
        } catch (...) {
          ++_stats.accept_overflows;
          e->owner = nullptr;
          c.abort(now());
        }
      }
    } else {
      e->owner = nullptr;
      if (c.state() != tcp_state::closed) c.abort(now());
    }
  }
  if (c.state() == tcp_state::closed && e->handles == 0 && !e->queued) {
    forget(e);
    return;
  }
  if (c.state() == tcp_state::time_wait && !e->listed_time_wait) {
    // Oldest first, for evict_time_wait(); tuples whose connection is
    // gone leave from the front as new ones come.
    while (!_time_wait.empty()) {
      auto it = _connections.find(_time_wait.front());
      if (it != _connections.end() && it->second->conn.state() == tcp_state::time_wait) break;
      _time_wait.pop_front();
    }
    try {
      _time_wait.push_back(c.tuple());
      e->listed_time_wait = true;
    } catch (...) {
      // (Not listed: it is never evicted early, and ends in its time.)
    }
  }
  // One timer per connection, moved only to an earlier deadline: a
  // later one (an RTO pushed back by each ACK) is found when the earlier
  // one fires.
  const tcp_time due = c.next_deadline();
  if (due == tcp_time_never) {
    if (e->armed != tcp_time_never) {
      e->clock.cancel();
      e->armed = tcp_time_never;
      --_timers_armed;
    }
  } else if (due < e->armed) {
    if (e->armed == tcp_time_never) ++_timers_armed;
    e->armed = due;
    e->clock.rearm(steady_clock_type::time_point(std::chrono::duration_cast<steady_clock_type::duration>(due)));
  }
}

void tcp_layer::forget(const lw_shared_ptr<entry>& held) noexcept {
  lw_shared_ptr<entry> e = held;
  if (!e->in_table) return;
  e->in_table = false;
  if (e->armed != tcp_time_never) {
    e->clock.cancel();
    e->armed = tcp_time_never;
    --_timers_armed;
  }
  _buffered -= e->counted;
  e->counted = 0;
  if (e->half_open) {
    --e->owner->half_open;
    e->half_open = false;
  }
  e->owner = nullptr;
  ++_stats.connections_closed;
  _connections.erase(e->conn.tuple());
  // Its handles, if any, see a stack that no longer drives it (their
  // reads end, their writes fail) and never call back into this layer.
  e->layer = nullptr;
  e->wake();
}

bool tcp_layer::evict_time_wait() noexcept {
  while (!_time_wait.empty()) {
    const tcp_tuple t = _time_wait.front();
    _time_wait.pop_front();
    auto it = _connections.find(t);
    if (it != _connections.end() && it->second->conn.state() == tcp_state::time_wait) {
      ++_stats.time_wait_evicted;
      forget(it->second);
      return true;
    }
  }
  return false;
}

void tcp_layer::drop_handle(const lw_shared_ptr<entry>& held) noexcept {
  lw_shared_ptr<entry> e = held;
  if (--e->handles > 0) return;
  try {
    if (e->linger && e->linger->count() == 0) {
      e->conn.abort(now());
    } else {
      e->conn.release(now());
    }
  } catch (...) {
    abort_entry(e);
    return;
  }
  after(e);
}

void tcp_layer::abort_all() noexcept {
  while (!_listeners.empty()) {
    lw_shared_ptr<listener> l = _listeners.begin()->second;
    close_listener(*l);
  }
  std::vector<lw_shared_ptr<entry>> all;
  all.reserve(_connections.size());
  for (auto& [t, e] : _connections) all.push_back(e);
  for (auto& e : all) {
    e->conn.abort(now());
    after(e);
  }
}

void tcp_layer::transmit(std::uint32_t source, std::uint32_t destination, tcp_header& h, packet&& payload,
                         std::uint32_t segment_size) noexcept {
  try {
    const std::size_t size = tcp_header::min_size + h.options.size();
    const bool cut = segment_size != 0 && payload.len() > segment_size;
    char* at = payload.prepend_header(size);
    auto bytes = std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(at), size);
    h.write(bytes);
    checksummer c;
    c.add_words(ipv4_pseudo_header_sum(source, destination, ip_protocol::tcp, static_cast<std::uint16_t>(payload.len())));
    l4_offload offload;
    offload.header_length = static_cast<std::uint8_t>(size);
    if (_ip.info().offloads.tx_checksum) {
      // The device sums the segment (or, with TSO, each piece it cuts).
      offload.checksum = true;
      wire::put16(bytes, 16, c.partial());
    } else {
      c.add(payload);
      wire::put16(bytes, 16, c.get());
    }
    if (cut) offload.segment_size = static_cast<std::uint16_t>(segment_size);
    (void)_ip.send(destination, static_cast<std::uint8_t>(ip_protocol::tcp), std::move(payload), false, offload)
        .handle_exception([](std::exception_ptr) {});  // (a lost segment: TCP sends it again)
  } catch (...) {
    // No memory for the header: as a segment lost.
  }
}

void tcp_layer::receive(const ipv4_header& ih, packet&& data, checksum_status checksum) noexcept {
  try {
    if (ih.destination != _ip.address()) {
      ++_stats.not_for_us;
      return;
    }
    // The header and checksum want the segment in one piece.
    if (data.nr_frags() != 1) {
      temporary_buffer<char> flat = data.linearize();
      data = packet(std::move(flat));
    }
    if (data.len() == 0) {
      ++_stats.header_errors;
      return;
    }
    const fragment& f = data.fragments().front();
    tcp_header h;
    const tcp_error err = tcp_header::parse(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(f.base), f.size),
                                            ih.source, ih.destination, h, checksum == checksum_status::good);
    if (err != tcp_error::none) {
      ++_stats.header_errors;
      if (err == tcp_error::bad_checksum) ++_stats.bad_checksums;
      return;
    }
    if (h.source_port == 0 || h.destination_port == 0) {
      ++_stats.header_errors;
      return;
    }
    data.trim_front(h.header_length);
    const tcp_tuple t{ih.destination, h.destination_port, ih.source, h.source_port};
    auto it = _connections.find(t);
    if (it != _connections.end()) {
      lw_shared_ptr<entry> e = it->second;
      const bool new_syn = h.has(tcp_flags::syn) && !h.has(tcp_flags::ack);
      if (e->conn.state() == tcp_state::closed) {
        // Closed, kept only for the application's handles: the 4-tuple
        // is free (a closed connection answers with a reset, below).
        forget(e);
      } else if (new_syn && e->conn.state() == tcp_state::time_wait && _listeners.contains(t.local_port) &&
                 e->conn.accepts_new_syn(h)) {
        forget(e);  // RFC 6191: the 4-tuple goes to the new connection
      } else {
        // Past the budget, bytes that cannot be read now go (the peer
        // sends them again once there is room): all but the next expected
        // ones when nothing is unread, which fill the hole the held bytes
        // wait behind (dropping those too would hold them for ever).
        const bool readable_now = tcp_seq(h.seq) == e->conn.next_expected() && e->conn.readable() == 0;
        if (data.len() > 0 && over_memory() && !readable_now) {
          // The ACK and window still count.
          ++_stats.memory_drops;
          tcp_header without_data = h;
          without_data.flags &= static_cast<std::uint8_t>(~tcp_flags::fin);
          try {
            e->conn.receive(without_data, packet(), now());
          } catch (...) {
            abort_entry(e);
            return;
          }
          after(e);
          return;
        }
        try {
          e->conn.receive(h, std::move(data), now());
        } catch (...) {
          abort_entry(e);  // no memory to take it: the connection cannot go on as if it had
          return;
        }
        after(e);
        return;
      }
    }
    auto l = _listeners.find(t.local_port);
    if (l != _listeners.end() && !l->second->aborted) {
      receive_for_listener(l->second, t, h, std::move(data));
      return;
    }
    reset_for(t, h, data.len());
  } catch (...) {
    ++_stats.memory_drops;  // no memory to take it: as lost
  }
}

void tcp_layer::receive_for_listener(const lw_shared_ptr<listener>& l, const tcp_tuple& t, const tcp_header& h,
                                     packet&& payload) {
  if (h.has(tcp_flags::rst)) return;
  if (h.has(tcp_flags::ack) && !h.has(tcp_flags::syn)) {
    // Perhaps the last ACK of a handshake we answered with a cookie.
    tcp_connection::cookie_options o;
    if (_options.syn_cookies && check_cookie(t, h, o)) {
      if (_connections.size() >= _options.limits.connections_max && !evict_time_wait()) {
        ++_stats.syns_dropped;
        return;
      }
      ++_stats.syn_cookies_accepted;
      lw_shared_ptr<entry> e = make_entry(t, tcp_seq(h.ack - 1));
      e->owner = l;
      e->half_open = true;
      ++l->half_open;
      e->conn.accept_cookie(h, std::move(payload), o, now());
      after(e);
      return;
    }
    if (_options.syn_cookies) ++_stats.syn_cookies_rejected;
    reset_for(t, h, payload.len());
    return;
  }
  if (!h.has(tcp_flags::syn) || h.has(tcp_flags::ack)) {
    if (h.has(tcp_flags::ack)) reset_for(t, h, payload.len());
    return;
  }
  if (h.has(tcp_flags::fin)) {
    ++_segments.syn_fin_dropped;
    return;
  }
  if (_connections.size() >= _options.limits.connections_max) evict_time_wait();
  if (l->half_open >= _options.limits.syn_backlog || _connections.size() >= _options.limits.connections_max) {
    if (_options.syn_cookies) {
      send_cookie(t, h);
    } else {
      ++_stats.syns_dropped;
    }
    return;
  }
  const tcp_time at = now();
  lw_shared_ptr<entry> e = make_entry(t, _isn(t.local_ip, t.local_port, t.remote_ip, t.remote_port, at));
  e->owner = l;
  e->half_open = true;
  ++l->half_open;
  e->conn.accept(h, at);
  after(e);
}

void tcp_layer::reset_for(const tcp_tuple& t, const tcp_header& h, std::size_t payload_length) noexcept {
  if (h.has(tcp_flags::rst)) return;  // never a reset for a reset
  tcp_header r;
  r.source_port = t.local_port;
  r.destination_port = t.remote_port;
  if (h.has(tcp_flags::ack)) {
    r.seq = h.ack;
    r.flags = tcp_flags::rst;
  } else {
    r.seq = 0;
    r.ack = h.seq + static_cast<std::uint32_t>(payload_length) + (h.has(tcp_flags::syn) ? 1 : 0) +
            (h.has(tcp_flags::fin) ? 1 : 0);
    r.flags = tcp_flags::rst | tcp_flags::ack;
  }
  ++_stats.resets_for_no_socket;
  transmit(t.local_ip, t.remote_ip, r, packet());
}

std::uint32_t tcp_layer::cookie_hash(const tcp_tuple& t, std::uint32_t counter, std::uint32_t peer_isn) const noexcept {
  std::uint8_t in[20];
  std::memcpy(in, &t.local_ip, 4);
  std::memcpy(in + 4, &t.remote_ip, 4);
  std::memcpy(in + 8, &t.local_port, 2);
  std::memcpy(in + 10, &t.remote_port, 2);
  std::memcpy(in + 12, &counter, 4);
  std::memcpy(in + 16, &peer_isn, 4);
  return static_cast<std::uint32_t>(siphash24(_cookie_secret, in));
}

void tcp_layer::send_cookie(const tcp_tuple& t, const tcp_header& syn) {
  const tcp_time at = now();
  const std::uint32_t counter = cookie_counter(at);
  const std::uint16_t peer_mss = syn.options.mss.value_or(536);
  std::uint32_t index = 0;
  for (std::uint32_t i = 0; i < std::size(cookie_mss); ++i) {
    if (cookie_mss[i] <= peer_mss) index = i;
  }
  const std::uint32_t cookie =
      ((counter & 0x1f) << 27) | (index << 24) | (cookie_hash(t, counter, syn.seq) & 0xffffff);
  const tcp_config& config = _options.connection;
  tcp_header h;
  h.source_port = t.local_port;
  h.destination_port = t.remote_port;
  h.seq = cookie;
  h.ack = syn.seq + 1;
  h.flags = tcp_flags::syn | tcp_flags::ack;
  h.window = static_cast<std::uint16_t>(std::min<std::uint32_t>(std::min(config.initial_receive_window, config.receive_buffer), 65535));
  h.options.mss = config.mss;
  if (syn.options.timestamps && config.timestamps) {
    // Window scale and SACK ride in the low bits of our TSval; without
    // timestamps they cannot, and are not offered.
    std::uint32_t bits = cookie_ts_present;
    if (syn.options.window_scale && config.window_scaling) {
      const std::uint8_t ours = shift_for(config.receive_buffer);
      h.options.window_scale = ours;
      bits |= static_cast<std::uint32_t>(*syn.options.window_scale) + 1;
    }
    if (syn.options.sack_permitted && config.sack) {
      h.options.sack_permitted = true;
      bits |= cookie_ts_sack;
    }
    const std::uint32_t real = tcp_connection::timestamp_at(tcp_seq(cookie), at);
    std::uint32_t tsval = (real & ~cookie_ts_mask) | bits;
    if (static_cast<std::int32_t>(tsval - real) > 0) tsval -= cookie_ts_mask + 1;  // never ahead of the clock
    h.options.timestamps = std::array<std::uint32_t, 2>{tsval, (*syn.options.timestamps)[0]};
  }
  ++_stats.syn_cookies_sent;
  ++_segments.segments_sent;
  transmit(t.local_ip, t.remote_ip, h, packet());
}

bool tcp_layer::check_cookie(const tcp_tuple& t, const tcp_header& ack,
                             tcp_connection::cookie_options& out) const noexcept {
  const std::uint32_t cookie = ack.ack - 1;
  const std::uint32_t peer_isn = ack.seq - 1;
  const std::uint32_t index = (cookie >> 24) & 0x7;
  if (index >= std::size(cookie_mss)) return false;
  const std::uint32_t counter = cookie_counter(now());
  bool valid = false;
  for (std::uint32_t c : {counter, counter - 1}) {
    if ((c & 0x1f) == (cookie >> 27) && (cookie_hash(t, c, peer_isn) & 0xffffff) == (cookie & 0xffffff)) valid = true;
  }
  if (!valid) return false;
  out = tcp_connection::cookie_options{};
  out.mss = cookie_mss[index];
  if (ack.options.timestamps && ((*ack.options.timestamps)[1] & cookie_ts_present) != 0) {
    const std::uint32_t bits = (*ack.options.timestamps)[1] & cookie_ts_mask;
    out.timestamps = true;
    out.sack = (bits & cookie_ts_sack) != 0;
    if ((bits & 0xf) != 0) out.window_scale = static_cast<std::uint8_t>((bits & 0xf) - 1);
  }
  return true;
}

tcp_layer_stats tcp_layer::stats() const noexcept {
  tcp_layer_stats s = _stats;
  s.segments = _segments;
  s.connections = _connections.size();
  s.timers_armed = _timers_armed;
  s.buffered_bytes = _buffered;
  return s;
}

std::optional<tcp_info> tcp_layer::info(const tcp_tuple& t) const noexcept {
  auto it = _connections.find(t);
  if (it == _connections.end()) return std::nullopt;
  return it->second->conn.info();
}

}  // namespace reef::tcpip
