#include "tcpip/udp.h"

#include <netinet/in.h>

#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "core/circular_buffer.h"
#include "tcpip/checksum.h"
#include "tcpip/icmp_header.h"
#include "tcpip/udp_header.h"
#include "tcpip/wire.h"

namespace reef::tcpip {

namespace {

std::span<std::uint8_t> bytes_of(char* p, std::size_t n) noexcept {
  return std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(p), n);
}

constexpr auto& address_of = ipv4_socket_address;

std::system_error error(int code, const char* what) { return std::system_error(code, std::system_category(), what); }

}  // namespace

// A bound port: what the layer delivers to and the channel reads from.
// Owned by the channel; the layer's table points at it while bound.
struct udp_layer::socket {
  // A datagram waiting to be read, or an ICMP error about one we sent.
  // Small: the address and the exception are made when it is read.
  struct item {
    temporary_buffer<char> data;
    std::uint32_t peer = 0;  // the sender; an error's: where the datagram it is about went
    std::uint16_t peer_port = 0;
    int error = 0;  // an ICMP error's errno; 0 for a datagram
  };

  explicit socket(std::size_t queue_max) noexcept : queue_max(queue_max) {}

  bool full() const noexcept { return inbox.size() >= queue_max; }

  // To the receive() waiting, or into the inbox. Throws std::bad_alloc
  // (the inbox grows), with nothing delivered.
  [[gnu::always_inline]] void deliver(item&& i) {
    if (!waiter) {
      const bool is_error = i.error != 0;
      inbox.push_back(std::move(i));
      error_queued = error_queued || is_error;
      return;
    }
    // (What can throw comes before the waiter is taken.)
    std::exception_ptr failure = i.error != 0 ? icmp_error(i) : nullptr;
    promise<udp_datagram> p = std::move(*waiter);
    waiter.reset();
    if (failure) {
      p.set_exception(std::move(failure));
    } else {
      p.set_value(udp_datagram{std::move(i.data), address_of(i.peer, i.peer_port)});
    }
  }

  static std::exception_ptr icmp_error(const item& i) {
    const std::string what = "udp: ICMP from the path to " + ipv4_to_string(i.peer) + ":" + std::to_string(i.peer_port);
    return std::make_exception_ptr(error(i.error, what.c_str()));
  }

  std::uint16_t port = 0;
  std::size_t queue_max;
  circular_buffer<item> inbox;
  std::optional<promise<udp_datagram>> waiter;  // a receive() that found the inbox empty
  // Whether an error waits in the inbox: no second one is queued behind
  // it (a flood of them must not crowd datagrams out).
  bool error_queued = false;
};

class native_udp_channel final : public udp_channel_impl {
 public:
  native_udp_channel(udp_layer& layer, std::uint16_t port) : _layer(layer), _socket(layer._limits.receive_queue_max) {
    _socket.port = port;
    _layer._ports.insert(port, &_socket);
  }
  ~native_udp_channel() override { close(); }

  future<> send(const socket_address& destination, packet&& p) override {
    if (_closed) return make_exception_future<>(error(EBADF, "udp send: the channel is closed"));
    if (destination.family() != AF_INET) {
      return make_exception_future<>(error(EAFNOSUPPORT, "udp send: the native stack speaks IPv4"));
    }
    if (p.len() > 65535 - udp_header::size - ipv4_header::min_size) {
      return make_exception_future<>(error(EMSGSIZE, "udp send: datagram too large"));
    }
    try {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(destination.as_sockaddr());
      const std::uint32_t to = ntohl(sin->sin_addr.s_addr);
      const auto length = static_cast<std::uint16_t>(udp_header::size + p.len());
      udp_header h{_socket.port, ntohs(sin->sin_port), length, 0};
      // The checksum: the pseudo header, the header's fields (summed, not
      // read back), then the data.
      checksummer c;
      c.add_words(ipv4_pseudo_header_sum(_layer._ip.address(), to, ip_protocol::udp, length) + h.source_port +
                  h.destination_port + length);
      c.add(p);
      const std::uint16_t sum = c.get();
      h.checksum = sum == 0 ? 0xffff : sum;  // (0 would say "none")
      h.write(bytes_of(p.prepend_header(udp_header::size), udp_header::size));
      ++_layer._stats.sent;
      return _layer._ip.send(to, static_cast<std::uint8_t>(ip_protocol::udp), std::move(p));
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
  }

  future<udp_datagram> receive() override {
    if (_closed) return make_exception_future<udp_datagram>(closed());
    if (!_socket.inbox.empty()) {
      // A datagram already waiting: straight out, no continuation.
      udp_layer::socket::item& i = _socket.inbox.front();
      if (i.error == 0) {
        future<udp_datagram> f =
            make_ready_future<udp_datagram>(udp_datagram{std::move(i.data), address_of(i.peer, i.peer_port)});
        _socket.inbox.pop_front();
        return f;
      }
      std::exception_ptr failure;
      try {
        failure = udp_layer::socket::icmp_error(i);
      } catch (...) {
        return make_exception_future<udp_datagram>(std::current_exception());  // (the error stays queued)
      }
      _socket.error_queued = false;
      _socket.inbox.pop_front();
      return make_exception_future<udp_datagram>(std::move(failure));
    }
    REEF_ASSERT(!_socket.waiter, "a second receive() waits on one UDP channel");
    _socket.waiter.emplace();
    return _socket.waiter->get_future();
  }

  socket_address local_address() const override { return address_of(_layer._ip.address(), _socket.port); }

  void close() override {
    if (_closed) return;
    _closed = true;
    _layer._ports.erase(_socket.port);
    _socket.inbox.clear();
    _socket.error_queued = false;
    if (_socket.waiter) std::exchange(_socket.waiter, std::nullopt)->set_exception(closed());
  }

 private:
  static std::exception_ptr closed() {
    return std::make_exception_ptr(error(ECONNABORTED, "udp receive: the channel is closed"));
  }

  udp_layer& _layer;
  udp_layer::socket _socket;
  bool _closed = false;
};

void udp_layer::port_table::insert(std::uint16_t port, socket* s) {
  auto& page = _pages[port >> 8];
  if (!page) page = std::make_unique<std::array<socket*, 256>>();  // (zeroed)
  REEF_ASSERT((*page)[port & 0xff] == nullptr, "a UDP port bound twice");
  (*page)[port & 0xff] = s;
  ++_count;
}

void udp_layer::port_table::erase(std::uint16_t port) noexcept {
  auto& page = _pages[port >> 8];
  if (!page || (*page)[port & 0xff] == nullptr) return;
  (*page)[port & 0xff] = nullptr;
  --_count;
}

udp_stats& udp_stats::operator+=(const udp_stats& o) noexcept {
  static_assert(sizeof(udp_stats) == 7 * sizeof(std::uint64_t), "a count is left out of the sum");
  received += o.received;
  sent += o.sent;
  errors += o.errors;
  no_port += o.no_port;
  unreachables_sent += o.unreachables_sent;
  queue_full += o.queue_full;
  icmp_errors += o.icmp_errors;
  return *this;
}

udp_layer::udp_layer(ipv4_interface& ip, udp_limits limits)
    : _ip(ip), _limits(limits), _next_ephemeral(limits.ephemeral_first) {
  _ip.set_handler(static_cast<std::uint8_t>(ip_protocol::udp),
                  [this](const ipv4_header& h, packet&& data, checksum_status checksum) {
                    receive(h, std::move(data), checksum);
                  });
  _ip.set_error_handler(static_cast<std::uint8_t>(ip_protocol::udp),
                        [this](const icmp_header& icmp, const ipv4_header& quoted, std::span<const std::uint8_t> data) {
                          receive_error(icmp, quoted, data);
                        });
}

udp_layer::~udp_layer() {
  _ip.set_handler(static_cast<std::uint8_t>(ip_protocol::udp), nullptr);
  _ip.set_error_handler(static_cast<std::uint8_t>(ip_protocol::udp), nullptr);
  REEF_ASSERT(_ports.empty(), "udp_layer destroyed while channels are bound");
}

udp_channel udp_layer::make_channel(const socket_address& local) {
  if (local.is_unix() || !local.address().is_ipv4()) {
    throw error(EAFNOSUPPORT, "udp bind: the native stack speaks IPv4");
  }
  const std::uint32_t address = ntohl(local.address().as_ipv4().s_addr);
  if (address != 0 && address != _ip.address()) throw error(EADDRNOTAVAIL, "udp bind: not this interface's address");
  std::uint16_t port = local.port();
  if (port == 0) {
    const std::uint32_t count = std::uint32_t{_limits.ephemeral_last} - _limits.ephemeral_first + 1;
    for (std::uint32_t i = 0; i < count && port == 0; ++i) {
      const std::uint16_t candidate = _next_ephemeral;
      _next_ephemeral = candidate == _limits.ephemeral_last ? _limits.ephemeral_first
                                                            : static_cast<std::uint16_t>(candidate + 1);
      if (!_ports.contains(candidate) && (!_ephemeral_ok || _ephemeral_ok(candidate))) port = candidate;
    }
    if (port == 0) throw error(EADDRINUSE, "udp bind: no ephemeral port free");
  } else if (_ports.contains(port)) {
    throw error(EADDRINUSE, "udp bind: the port is taken");
  }
  return udp_channel(std::make_unique<native_udp_channel>(*this, port));
}

void udp_layer::receive(const ipv4_header& h, packet&& data, checksum_status checksum) noexcept {
  udp_header u;
  if (udp_header::parse(data, h.source, h.destination, u, checksum == checksum_status::good) != udp_error::none) {
    ++_stats.errors;
    return;
  }
  socket* s = _ports.find(u.destination_port);
  if (s == nullptr) {
    ++_stats.no_port;
    if (h.destination == _ip.address()) port_unreachable(h, data);  // not for a broadcast
    return;
  }
  if (s->full()) {
    ++_stats.queue_full;
    return;
  }
  try {
    data.trim_front(udp_header::size);
    data.trim_back_to(u.length - udp_header::size);
    s->deliver(socket::item{std::move(data).linearize(), h.source, u.source_port, 0});
    ++_stats.received;
  } catch (const std::exception&) {
    ++_stats.queue_full;  // no memory for it: dropped as if the queue were full
  }
}

void udp_layer::receive_error(const icmp_header& icmp, const ipv4_header& quoted,
                              std::span<const std::uint8_t> data) noexcept {
  // The quoted datagram went from one of our ports: that socket hears.
  socket* s = _ports.find(wire::get16(data, 0));
  if (s == nullptr || s->full() || s->error_queued) return;
  int code = ETIMEDOUT;  // time exceeded
  if (icmp.type == static_cast<std::uint8_t>(icmp_type::destination_unreachable)) {
    switch (static_cast<icmp_unreachable>(icmp.code)) {
      case icmp_unreachable::network: code = ENETUNREACH; break;
      case icmp_unreachable::port: case icmp_unreachable::protocol: code = ECONNREFUSED; break;
      case icmp_unreachable::fragmentation_needed: code = EMSGSIZE; break;
      default: code = EHOSTUNREACH; break;
    }
  }
  try {
    s->deliver(socket::item{{}, quoted.destination, wire::get16(data, 2), code});
    ++_stats.icmp_errors;
  } catch (const std::exception&) {
  }
}

void udp_layer::port_unreachable(const ipv4_header& h, const packet& data) noexcept {
  const auto now = lowres_clock::now();
  if (now - _budget_since >= std::chrono::seconds(1)) {
    _budget_since = now;
    _budget_used = 0;
  }
  if (_budget_used >= _limits.unreachables_per_second) return;
  ++_budget_used;
  try {
    // The ICMP header, then the datagram's IP header and its first 8
    // bytes (RFC 792).
    const std::size_t quoted = std::min<std::size_t>(data.len(), 8);
    temporary_buffer<char> m(icmp_header::size + ipv4_header::min_size + quoted);
    auto b = bytes_of(m.get_write(), m.size());
    icmp_header{static_cast<std::uint8_t>(icmp_type::destination_unreachable),
                static_cast<std::uint8_t>(icmp_unreachable::port), 0, 0, 0}
        .write(b);
    ipv4_header original = h;
    original.total_length = static_cast<std::uint16_t>(ipv4_header::min_size + h.data_length());
    original.write(b.subspan(icmp_header::size));
    wire::copy_front(data, b.subspan(icmp_header::size + ipv4_header::min_size, quoted));
    wire::put16(b, 2, internet_checksum(b));
    ++_stats.unreachables_sent;
    (void)_ip.send(h.source, static_cast<std::uint8_t>(ip_protocol::icmp), packet(std::move(m)))
        .handle_exception([](std::exception_ptr) {});
  } catch (const std::exception&) {
  }
}

}  // namespace reef::tcpip
