#include "net/api.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace reef {

future<accept_result> server_socket::accept() {
  if (!_impl) {
    return make_exception_future<accept_result>(
        std::system_error(ECONNABORTED, std::system_category(), "accept on a server_socket that does not listen"));
  }
  return _impl->accept();
}

inet_address inet_address::parse(std::string_view text) {
  std::string s(text);
  in_addr v4;
  if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) return inet_address(v4);
  in6_addr v6;
  if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) return inet_address(v6);
  throw std::invalid_argument("not an IPv4 or IPv6 address: '" + s + "'");
}

bool inet_address::is_loopback() const noexcept {
  if (is_ipv4()) return (ntohl(_v4.s_addr) >> 24) == 127;
  return IN6_IS_ADDR_LOOPBACK(&_v6);
}

bool inet_address::is_any() const noexcept {
  if (is_ipv4()) return _v4.s_addr == INADDR_ANY;
  return IN6_IS_ADDR_UNSPECIFIED(&_v6);
}

std::string inet_address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_ipv4()) {
    ::inet_ntop(AF_INET, &_v4, buf, sizeof(buf));
  } else {
    ::inet_ntop(AF_INET6, &_v6, buf, sizeof(buf));
  }
  return buf;
}

bool operator==(const inet_address& a, const inet_address& b) noexcept {
  if (a._family != b._family) return false;
  if (a.is_ipv4()) return a._v4.s_addr == b._v4.s_addr;
  return std::memcmp(&a._v6, &b._v6, sizeof(a._v6)) == 0;
}

bool operator<(const inet_address& a, const inet_address& b) noexcept {
  if (a._family != b._family) return a._family < b._family;
  if (a.is_ipv4()) return ntohl(a._v4.s_addr) < ntohl(b._v4.s_addr);
  return std::memcmp(&a._v6, &b._v6, sizeof(a._v6)) < 0;
}

std::size_t inet_address::hash() const noexcept {
  if (is_ipv4()) return std::hash<std::uint32_t>()(_v4.s_addr);
  std::size_t h = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(&_v6);
  for (std::size_t i = 0; i < sizeof(_v6); ++i) h = h * 131 + p[i];
  return h;
}

socket_address::socket_address() noexcept : socket_address(inet_address(), 0) {}

socket_address::socket_address(const sockaddr* sa, socklen_t length) noexcept {
  if (length > sizeof(_storage)) length = sizeof(_storage);
  std::memcpy(&_storage, sa, length);
  _length = length;
}

static_assert(socket_address::unix_path_max + 1 == sizeof(sockaddr_un::sun_path));

socket_address socket_address::unix_socket(std::string_view path) {
  auto fail = [&](const char* why) {
    return std::invalid_argument("not a Unix-domain socket path: '" + std::string(path) + "' (" + why + ")");
  };
  if (path.empty() || path == "@") throw fail("empty");
  if (path.size() > unix_path_max) throw fail("longer than 107 bytes");
  if (path.find('\0') != std::string_view::npos) throw fail("holds a NUL");
  socket_address a;
  a._storage = sockaddr_storage{};
  auto* sun = reinterpret_cast<sockaddr_un*>(&a._storage);
  sun->sun_family = AF_UNIX;
  std::memcpy(sun->sun_path, path.data(), path.size());
  if (path.front() == '@') {
    // The abstract namespace: a leading NUL, and the length says where the
    // name ends (it is not NUL-terminated).
    sun->sun_path[0] = '\0';
    a._length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    a._length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return a;
}

std::string socket_address::unix_path() const {
  if (!is_unix() || _length <= offsetof(sockaddr_un, sun_path)) return {};
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&_storage);
  std::size_t n = _length - offsetof(sockaddr_un, sun_path);
  if (sun->sun_path[0] == '\0') return "@" + std::string(sun->sun_path + 1, n - 1);
  return std::string(sun->sun_path, strnlen(sun->sun_path, n));
}

socket_address socket_address::parse(std::string_view text) {
  if (text.substr(0, 5) == "unix:") return unix_socket(text.substr(5));
  auto fail = [&](const char* why) {
    return std::invalid_argument("not an address:port: '" + std::string(text) + "' (" + why + ")");
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) throw fail("no ']'");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') throw fail("no ':port' after ']'");
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("no ':port'");
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) throw fail("IPv6 addresses go in brackets");
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5) throw fail("bad port");
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') throw fail("bad port");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) throw fail("port above 65535");
  inet_address address;
  try {
    address = inet_address::parse(host);
  } catch (const std::invalid_argument&) {
    throw fail("bad address");
  }
  return socket_address(address, static_cast<std::uint16_t>(value));
}

inet_address socket_address::address() const noexcept {
  if (_storage.ss_family == AF_INET6) {
    return inet_address(reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_addr);
  }
  if (_storage.ss_family != AF_INET) return inet_address();
  return inet_address(reinterpret_cast<const sockaddr_in*>(&_storage)->sin_addr);
}

std::uint16_t socket_address::port() const noexcept {
  if (_storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_port);
  }
  if (_storage.ss_family != AF_INET) return 0;
  return ntohs(reinterpret_cast<const sockaddr_in*>(&_storage)->sin_port);
}

std::string socket_address::to_string() const {
  if (is_unix()) return "unix:" + unix_path();
  auto a = address();
  if (a.is_ipv4()) return a.to_string() + ":" + std::to_string(port());
  return "[" + a.to_string() + "]:" + std::to_string(port());
}

namespace {
// A Unix-domain address's path bytes (after sun_family), without a copy.
std::string_view unix_bytes(const sockaddr_storage& ss, socklen_t length) noexcept {
  if (length <= offsetof(sockaddr_un, sun_path)) return {};
  const auto* sun = reinterpret_cast<const sockaddr_un*>(&ss);
  const std::size_t n = length - offsetof(sockaddr_un, sun_path);
  if (sun->sun_path[0] == '\0') return std::string_view(sun->sun_path, n);  // abstract: all of it
  return std::string_view(sun->sun_path, strnlen(sun->sun_path, n));
}
}  // namespace

bool operator==(const socket_address& a, const socket_address& b) noexcept {
  if (a.is_unix() || b.is_unix()) {
    return a.is_unix() && b.is_unix() && unix_bytes(a._storage, a._length) == unix_bytes(b._storage, b._length);
  }
  return a.address() == b.address() && a.port() == b.port();
}

std::size_t socket_address::hash() const noexcept {
  if (is_unix()) return std::hash<std::string_view>()(unix_bytes(_storage, _length));
  return address().hash() * 31 + port();
}

std::ostream& operator<<(std::ostream& os, const inet_address& a) { return os << a.to_string(); }
std::ostream& operator<<(std::ostream& os, const socket_address& a) { return os << a.to_string(); }

}  // namespace reef
