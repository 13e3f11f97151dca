// An HTTP/1.1 request as the server hands it to a handler.
//
//   reef::future<reef::http::reply> hello(reef::http::request& req) {
//     auto who = req.param("name");               // from the route /hello/{name}
//     auto agent = req.headers.get("user-agent");  // any case
//     ...
//   }
//
// A request's body is either buffered whole in `content` (routes::add, up to
// the parser's body_max, with the server's memory budget for bodies) or,
// for routes::add_streaming, read by the handler as it arrives through
// body_stream(), in bounded memory whatever its size.
//
// Thread rules: a request belongs to the connection (and shard) that read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/iostream.h"
#include "core/text.h"

namespace reef::http {

/// Whether `a` and `b` are equal ignoring ASCII case.
inline bool iequals(std::string_view a, std::string_view b) noexcept { return text::iequals(a, b); }

/// Header fields in the order they came, looked up ignoring case.
class header_list {
 public:
  /// The first value of `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  /// The first value of `name`, or `otherwise`.
  std::string_view get_or(std::string_view name, std::string_view otherwise) const noexcept {
    auto v = get(name);
    return v ? *v : otherwise;
  }
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  /// How many fields are named `name`.
  std::size_t count(std::string_view name) const noexcept;
  /// Whether the comma-separated values of `name` hold `token` (any case):
  /// has_token("connection", "close").
  bool has_token(std::string_view name, std::string_view token) const noexcept;

  void add(std::string name, std::string value) { _fields.emplace_back(std::move(name), std::move(value)); }
  /// add(), copying the text straight into the list.
  void add(std::string_view name, std::string_view value) { _fields.emplace_back(name, value); }
  void add(const char* name, const char* value) { _fields.emplace_back(name, value); }
  /// Replaces every field named `name` by one with `value`.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  void clear() noexcept { _fields.clear(); }

  std::size_t size() const noexcept { return _fields.size(); }
  bool empty() const noexcept { return _fields.empty(); }
  auto begin() const noexcept { return _fields.begin(); }
  auto end() const noexcept { return _fields.end(); }

 private:
  std::vector<std::pair<std::string, std::string>> _fields;
};

class http_server;

/// A request as the server hands it to a handler. The server owns it: it
/// is valid (with every string_view into it) until the handler's reply
/// has been written, and then reused for the connection's next request.
struct request {
  /// "GET", "POST", ... as sent (methods are case-sensitive).
  std::string method;
  /// The request target as sent ("/a%20b?x=1").
  std::string target;
  /// The target's path, percent-decoded ("/a b").
  std::string path;
  /// The target's query, as sent, without the '?' ("x=1").
  std::string query;
  /// 1.0 or 1.1: {1, 0} or {1, 1}.
  int version_major = 1;
  int version_minor = 1;
  header_list headers;
  /// The body (de-chunked), for routes added with routes::add(); empty for
  /// routes added with routes::add_streaming(), whose handlers read
  /// body_stream() instead.
  std::string content;
  /// A connection's requests share one request object; a body buffer of
  /// up to this many bytes is kept from one request to the next while the
  /// client sends more, and freed when the connection waits for one.
  static constexpr std::size_t kept_content_max = 16 * 1024;
  /// The body's length from Content-Length, if the client sent one.
  std::optional<std::uint64_t> content_length;
  /// Fields after a chunked body.
  header_list trailers;
  /// Whether the connection stays open after the reply (HTTP/1.1 unless
  /// "Connection: close"; HTTP/1.0 only with "Connection: keep-alive").
  bool keep_alive = true;
  /// The route's path parameters, {name, value}, decoded.
  std::vector<std::pair<std::string, std::string>> params;

  /// A path parameter's value, or "" if the route has none of that name.
  std::string_view param(std::string_view name) const noexcept;
  /// A query parameter's value (decoded), or nullopt.
  std::optional<std::string> query_param(std::string_view name) const;
  bool is_http_1_0() const noexcept { return version_major == 1 && version_minor == 0; }

  /// For a route added with routes::add_streaming(): the body as it
  /// arrives, de-chunked, an empty buffer at its end; reading it while
  /// the reply is written (an echo) is fine. Valid until the reply is
  /// sent; what the handler leaves unread is drained by the server (up to
  /// server_options::unread_body_drain_max, or the connection closes).
  /// Trailers are in `trailers` once it has been read to its end.
  /// REQUIRES: has_body_stream().
  input_stream<char>& body_stream() noexcept;
  /// Whether the request's body is streamed (the route is a streaming one).
  bool has_body_stream() const noexcept { return _body_streamed; }

 private:
  friend class http_server;
  friend class request_parser;
  // Empties it for the next request on the connection, keeping the
  // memory of its strings and lists (a large buffered body's goes).
  void clear() noexcept;
  // Frees the memory clear() keeps. REQUIRES: cleared.
  void release_memory() noexcept;

  input_stream<char> _body;
  bool _body_streamed = false;
};

/// Percent-decodes `text` ('+' stays '+'); nullopt if an escape is
/// malformed ("%4", "%zz").
std::optional<std::string> percent_decode(std::string_view text);

/// A request target's path ("/a/./b%20c/../d") as the server routes it:
/// percent-decoded segment by segment, with "." and ".." segments resolved
/// ("/a/d"). Empty, with `error` set to the reason, if an escape is
/// malformed, a segment decodes to one holding '/' or NUL (an encoded slash
/// would otherwise become a separator after the check), or ".." climbs
/// above the root.
std::string decode_path(std::string_view raw, const char*& error);
/// The same into `out` (replacing what it held, reusing its memory);
/// false, with `error` set and `out` unspecified, if the path is refused.
/// REQUIRES: `raw` does not view `out`.
bool decode_path(std::string_view raw, std::string& out, const char*& error);

}  // namespace reef::http
