#include "net/dns/dns.h"

#include <ares.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "core/reactor.h"
#include "core/timer.h"

namespace reef::dns {

namespace {

// `name` with what is not printable escaped, for messages.
std::string printable(std::string_view name) {
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char esc[5];
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    }
  }
  return out;
}

// Empty if `name` may be looked up, else why not.
std::string check_name(std::string_view name) {
  if (name.empty()) return "empty";
  if (name.find('\0') != std::string_view::npos) return "contains a NUL byte";
  std::string_view body = name.back() == '.' ? name.substr(0, name.size() - 1) : name;
  if (body.size() > 253) return "longer than 253 characters";
  std::size_t label = 0;
  for (char c : body) {
    if (c == '.') {
      if (label == 0) return "has an empty label";
      label = 0;
    } else if (++label > 63) {
      return "has a label longer than 63 characters";
    }
  }
  if (label == 0) return "has an empty label";
  return {};
}

std::exception_ptr error_for(int status, std::string_view name) {
  std::string quoted = "'" + printable(name) + "'";
  switch (status) {
    case ARES_ENOTFOUND:
      return std::make_exception_ptr(name_not_found(status, "no such host: " + quoted));
    case ARES_ENODATA:
      return std::make_exception_ptr(name_not_found(status, quoted + " has no address of the family asked"));
    case ARES_ETIMEOUT:
      return std::make_exception_ptr(timeout_error(status, "no DNS server answered for " + quoted + " in time"));
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
      return std::make_exception_ptr(dns_error(status, "resolver closed while looking up " + quoted));
    default:
      return std::make_exception_ptr(
          dns_error(status, "DNS lookup of " + quoted + " failed: " + ares_strerror(status)));
  }
}

int ares_family(std::optional<inet_address::family> family) {
  if (!family) return AF_UNSPEC;
  return *family == inet_address::family::ipv4 ? AF_INET : AF_INET6;
}

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) throw dns_error(status, std::string("ares_library_init: ") + ares_strerror(status));
  });
}

}  // namespace

class resolver::impl : public std::enable_shared_from_this<impl> {
 public:
  explicit impl(const resolver_options& options) {
    library_init();
    ares_options o{};
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
    o.timeout = static_cast<int>(options.timeout.count());
    o.tries = static_cast<int>(options.tries);
    std::string lookups = options.use_hosts_file ? "fb" : "b";
    o.lookups = lookups.data();
    o.sock_state_cb = &impl::on_socket_state;
    o.sock_state_cb_data = this;
    int status = ares_init_options(&_channel, &o, mask);
    if (status != ARES_SUCCESS) throw dns_error(status, std::string("ares_init_options: ") + ares_strerror(status));
    static const ares_socket_functions functions = {&impl::open_socket, &impl::close_socket,
                                                    &impl::connect_socket, &impl::receive_from,
                                                    &impl::send_vector};
    ares_set_socket_functions(_channel, &functions, this);
    if (!options.servers.empty()) {
      std::string csv;
      for (const auto& s : options.servers) csv += (csv.empty() ? "" : ",") + s.to_string();
      status = ares_set_servers_ports_csv(_channel, csv.c_str());
      if (status != ARES_SUCCESS) {
        ares_destroy(_channel);
        throw dns_error(status, "DNS servers '" + csv + "': " + ares_strerror(status));
      }
    }
    _timer.set_callback([this] {
      if (_channel == nullptr) return;
      ares_process_fd(_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      rearm_timer();
    });
  }

  ~impl() {
    // Nothing polls any more (a poll holds the impl): sockets close at once.
    if (_channel != nullptr) ares_destroy(_channel);
  }

  future<host> get_host_by_name(std::string_view name, std::optional<inet_address::family> family) {
    if (auto why = check_name(name); !why.empty()) {
      return make_exception_future<host>(dns_error(ARES_EBADNAME, "bad host name '" + printable(name) + "': " + why));
    }
    if (_channel == nullptr) return make_exception_future<host>(error_for(ARES_EDESTRUCTION, name));
    auto* l = new lookup{promise<host>(), std::string(name)};
    auto f = l->result.get_future();
    ares_addrinfo_hints hints{};
    hints.ai_family = ares_family(family);
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(_channel, l->name.c_str(), nullptr, &hints, &impl::on_addrinfo, l);
    rearm_timer();
    return f;
  }

  future<host> get_host_by_addr(const inet_address& address) {
    if (_channel == nullptr) return make_exception_future<host>(error_for(ARES_EDESTRUCTION, address.to_string()));
    auto* l = new lookup{promise<host>(), address.to_string()};
    auto f = l->result.get_future();
    if (address.is_ipv4()) {
      ares_gethostbyaddr(_channel, &address.as_ipv4(), sizeof(in_addr), AF_INET, &impl::on_hostent, l);
    } else {
      ares_gethostbyaddr(_channel, &address.as_ipv6(), sizeof(in6_addr), AF_INET6, &impl::on_hostent, l);
    }
    rearm_timer();
    return f;
  }

  future<> close() {
    if (_channel != nullptr) {
      _timer.cancel();
      ares_channel channel = std::exchange(_channel, nullptr);
      // Fails every pending lookup, and closes the sockets (close_socket
      // cancels their polls).
      ares_destroy(channel);
    }
    if (_sockets.empty()) return make_ready_future<>();
    if (!_all_closed) _all_closed.emplace();
    return _all_closed->get_future().then([keep = shared_from_this()] {});
  }

 private:
  struct lookup {
    promise<host> result;
    std::string name;
  };

  struct socket_state {
    bool want_read = false;
    bool want_write = false;
    short polled = 0;      // the events of the poll in flight (0: none)
    bool closing = false;  // c-ares closed it; the poll in flight holds it
  };

  // --- c-ares' callbacks. ---

  static void on_addrinfo(void* arg, int status, int, ares_addrinfo* result) {
    std::unique_ptr<lookup> l(static_cast<lookup*>(arg));
    if (status != ARES_SUCCESS) {
      if (result != nullptr) ares_freeaddrinfo(result);
      l->result.set_exception(error_for(status, l->name));
      return;
    }
    host h;
    h.name = l->name;
    for (ares_addrinfo_cname* c = result->cnames; c != nullptr; c = c->next) {
      if (c->alias != nullptr) h.aliases.emplace_back(c->alias);
      if (c->name != nullptr) h.name = c->name;
    }
    for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
      if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
      inet_address a = socket_address(n->ai_addr, n->ai_addrlen).address();
      bool seen = false;
      for (const auto& b : h.addresses) seen = seen || b == a;
      if (!seen) h.addresses.push_back(a);
    }
    ares_freeaddrinfo(result);
    if (h.addresses.empty()) {
      l->result.set_exception(error_for(ARES_ENODATA, l->name));
      return;
    }
    l->result.set_value(std::move(h));
  }

  static void on_hostent(void* arg, int status, int, hostent* he) {
    std::unique_ptr<lookup> l(static_cast<lookup*>(arg));
    if (status != ARES_SUCCESS) {
      l->result.set_exception(error_for(status, l->name));
      return;
    }
    host h;
    if (he->h_name != nullptr) h.name = he->h_name;
    for (char** a = he->h_aliases; a != nullptr && *a != nullptr; ++a) h.aliases.emplace_back(*a);
    for (char** a = he->h_addr_list; a != nullptr && *a != nullptr; ++a) {
      if (he->h_addrtype == AF_INET) {
        in_addr v4;
        std::memcpy(&v4, *a, sizeof(v4));
        h.addresses.emplace_back(v4);
      } else if (he->h_addrtype == AF_INET6) {
        in6_addr v6;
        std::memcpy(&v6, *a, sizeof(v6));
        h.addresses.emplace_back(v6);
      }
    }
    l->result.set_value(std::move(h));
  }

  static void on_socket_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<impl*>(data);
    auto it = self->_sockets.find(fd);
    if (it == self->_sockets.end() || it->second.closing) return;
    it->second.want_read = readable != 0;
    it->second.want_write = writable != 0;
    self->watch(fd);
  }

  static ares_socket_t open_socket(int domain, int type, int protocol, void* data) {
    auto* self = static_cast<impl*>(data);
    int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) return ARES_SOCKET_BAD;
    try {
      self->_sockets[fd] = socket_state{};
    } catch (...) {
      ::close(fd);
      errno = ENOMEM;
      return ARES_SOCKET_BAD;
    }
    return fd;
  }

  static int close_socket(ares_socket_t fd, void* data) {
    auto* self = static_cast<impl*>(data);
    auto it = self->_sockets.find(fd);
    if (it != self->_sockets.end() && it->second.polled != 0) {
      // The backend still watches it: the poll's end closes it, so that the
      // number is not reused under the poll.
      it->second.closing = true;
      engine().io().cancel(fd);
      return 0;
    }
    if (it != self->_sockets.end()) self->_sockets.erase(it);
    return ::close(fd);
  }

  static int connect_socket(ares_socket_t fd, const sockaddr* address, ares_socklen_t length, void*) {
    return ::connect(fd, address, length);
  }

  static ares_ssize_t receive_from(ares_socket_t fd, void* buffer, std::size_t length, int flags,
                                   sockaddr* from, ares_socklen_t* from_length, void*) {
    return ::recvfrom(fd, buffer, length, flags, from, from_length);
  }

  static ares_ssize_t send_vector(ares_socket_t fd, const iovec* iov, int count, void*) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(count);
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  }

  // --- Driving c-ares. ---

  // Makes the backend watch `fd` for what c-ares wants of it.
  void watch(int fd) {
    auto it = _sockets.find(fd);
    if (it == _sockets.end()) return;
    socket_state& s = it->second;
    short want = static_cast<short>((s.want_read ? POLLIN : 0) | (s.want_write ? POLLOUT : 0));
    if (s.polled != 0) {
      // A poll is in flight; if c-ares now wants more, restart it (the
      // cancelled poll's end calls watch() again).
      if ((want & ~s.polled) != 0) engine().io().cancel(fd);
      return;
    }
    if (want == 0) return;
    s.polled = want;
    (void)engine().io().readiness(fd, want).then([self = shared_from_this(), fd](long revents) {
      self->on_ready(fd, revents);
    });
  }

  void on_ready(int fd, long revents) noexcept {
    auto it = _sockets.find(fd);
    if (it == _sockets.end()) return;
    it->second.polled = 0;
    if (it->second.closing) {
      ::close(fd);
      _sockets.erase(it);
      if (_sockets.empty() && _all_closed) {
        _all_closed->set_value();
        _all_closed.reset();
      }
      return;
    }
    if (_channel == nullptr) return;
    if (revents != -ECANCELED) {
      // An error on the descriptor is for c-ares to read (or write) and see.
      const long error_events = revents < 0 ? POLLERR : (revents & (POLLERR | POLLHUP));
      const bool readable = it->second.want_read && ((revents > 0 && (revents & POLLIN)) || error_events);
      const bool writable = it->second.want_write && ((revents > 0 && (revents & POLLOUT)) || error_events);
      ares_process_fd(_channel, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
    }
    watch(fd);  // if c-ares still has it and wants something
    rearm_timer();
  }

  void rearm_timer() noexcept {
    if (_channel == nullptr) return;
    timeval tv{};
    timeval* next = ares_timeout(_channel, nullptr, &tv);
    if (next == nullptr) {
      _timer.cancel();
      return;
    }
    auto delay = std::chrono::seconds(next->tv_sec) + std::chrono::microseconds(next->tv_usec);
    _timer.rearm(steady_clock_type::now() + std::chrono::duration_cast<steady_clock_type::duration>(delay));
  }

  ares_channel _channel = nullptr;
  std::unordered_map<int, socket_state> _sockets;
  timer<> _timer;
  std::optional<promise<>> _all_closed;
};

resolver::resolver(const resolver_options& options) : _impl(std::make_shared<impl>(options)) {}

resolver::~resolver() {
  // Pending polls keep the impl until their end; the lookups fail now.
  if (_impl) (void)_impl->close();
}

resolver::resolver(resolver&&) noexcept = default;

resolver& resolver::operator=(resolver&& other) noexcept {
  if (this != &other) {
    if (_impl) (void)_impl->close();
    _impl = std::move(other._impl);
  }
  return *this;
}

future<inet_address> resolver::resolve_name(std::string_view name, std::optional<inet_address::family> family) {
  return _impl->get_host_by_name(name, family).then([](host h) { return h.addresses.front(); });
}

future<host> resolver::get_host_by_name(std::string_view name, std::optional<inet_address::family> family) {
  return _impl->get_host_by_name(name, family);
}

future<host> resolver::get_host_by_addr(const inet_address& address) {
  return _impl->get_host_by_addr(address);
}

future<> resolver::close() { return _impl->close(); }

namespace {

std::mutex default_options_mutex;
resolver_options& default_options_storage() {
  static auto* o = new resolver_options;
  return *o;
}

thread_local std::unique_ptr<resolver> shard_resolver;

}  // namespace

void set_default_options(resolver_options options) {
  std::lock_guard lock(default_options_mutex);
  default_options_storage() = std::move(options);
}

const resolver_options& default_options() {
  std::lock_guard lock(default_options_mutex);
  return default_options_storage();
}

resolver& this_shard_resolver() {
  if (!shard_resolver) {
    resolver_options options;
    {
      std::lock_guard lock(default_options_mutex);
      options = default_options_storage();
    }
    shard_resolver = std::make_unique<resolver>(options);
    engine().at_destroy([] { shard_resolver.reset(); });
  }
  return *shard_resolver;
}

}  // namespace reef::dns
