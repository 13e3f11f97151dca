// Routes: which handler answers a request, by method and path.
//
//   routes r;
//   r.add("GET", "/hello", [](request&) { return reply().write_body("text/plain", "hi\n"); });
//   r.add("GET", "/user/{id}", [](request& req) -> future<reply> {
//     co_return reply().write_body("text/plain", std::string(req.param("id")));
//   });
//   r.add("GET", "/static/{path*}", serve_file);   // the rest of the path, slashes and all
//   r.add("GET", "/fast", [](request&, reply& rep) { rep.write_body("text/plain", "hi\n"); });
//
// The last form fills in the reply the server passes (empty, status 200):
// the server reuses one reply while a connection's requests come in
// back to back, so the fields such a handler sets keep their memory.
// Patterns are paths whose segments may be `{name}` (one non-empty segment)
// or, last, `{name*}` (everything after the preceding slash). Exact paths
// are found by hash; patterns are tried in the order they were added.
// A path that no route has is 404; a path whose routes have other methods
// is 405 with an Allow field. HEAD is answered by the GET handler (the
// server sends no body). A handler that throws, or whose future fails,
// gives 500 (logged); the connection stays usable.
//
// Thread rules: each shard has its own routes (the server's).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "http/reply.h"
#include "http/request.h"

namespace reef::http {

using handler = noncopyable_function<future<reply>(request&)>;

class routes {
 public:
  /// Adds a route. `f(request&)` returns a reply or a future<reply> (a
  /// coroutine is fine), or `f(request&, reply&)` returns nothing and
  /// fills in the reply it is given (empty, status 200). Throws
  /// std::invalid_argument for a malformed pattern or method, or a route
  /// that is already there.
  template <typename F>
  routes& add(std::string_view method, std::string_view pattern, F&& f) {
    if constexpr (std::is_invocable_v<F&, request&, reply&>) {
      static_assert(std::is_void_v<std::invoke_result_t<F&, request&, reply&>>,
                    "a handler that takes the reply fills it in and returns nothing");
      return add_handler(method, pattern, handler(), immediate_handler(std::forward<F>(f)));
    } else if constexpr (std::is_same_v<std::invoke_result_t<F&, request&>, reply>) {
      return add_handler(method, pattern, handler(),
                         immediate_handler([f = std::forward<F>(f)](request& req, reply& out) mutable {
                           out = f(req);
                         }));
    } else {
      return add_handler(method, pattern, handler(std::forward<F>(f)), immediate_handler());
    }
  }

  /// Adds a route whose handler reads the request body as it arrives
  /// (request::body_stream()) instead of receiving it buffered in
  /// request::content: for bodies of any size in bounded memory. As add()
  /// otherwise.
  template <typename F>
  routes& add_streaming(std::string_view method, std::string_view pattern, F&& f) {
    add(method, pattern, std::forward<F>(f));
    _routes.back()->stream_body = true;
    return *this;
  }

  /// Finds the route for `req`, fills req.params, and runs its handler;
  /// 404, 405 and 500 come back as replies.
  future<reply> handle(request& req);

  /// Whether the route that would handle `req` (by its method and path)
  /// was added with add_streaming().
  bool streams_body(const request& req);

  /// The methods the routes of `path` take ("GET, HEAD, POST"); empty if
  /// none.
  std::string allowed_methods(std::string_view path) const;

 private:
  friend class http_server;
  // A handler that fills in its reply rather than returning a future:
  // the server takes the reply without a future in between.
  using immediate_handler = noncopyable_function<void(request&, reply&)>;

  // handle(), with the reply of an immediate handler (or 404, 405, or 500
  // for an immediate handler that throws) put in `out` and nullopt
  // returned; otherwise the handler's future. REQUIRES: `out` is empty
  // (a new reply, or one cleared).
  std::optional<future<reply>> run(request& req, reply& out);

  struct segment {
    enum class kind : unsigned char { literal, param, rest } type;
    std::string text;  // the literal, or the parameter's name
  };
  struct route {
    std::string method;
    std::string pattern;
    std::vector<segment> segments;  // empty for exact routes
    handler run;                    // one of the two
    immediate_handler run_now;
    bool stream_body = false;
  };

  // The route for `req`'s method and path (GET's for HEAD), or nullptr;
  // `path_known` says whether any route has the path.
  route* find(const request& req, bool& path_known);

  routes& add_handler(std::string_view method, std::string_view pattern, handler h, immediate_handler now);
  // Whether `r` (a pattern route) matches `path`; fills `params` if so.
  static bool matches(const route& r, std::string_view path,
                      std::vector<std::pair<std::string, std::string>>* params);
  // The routes that match `path`, exact ones first.
  template <typename Visit>
  void for_each_match(std::string_view path, Visit&& visit);

  struct path_hash {
    using is_transparent = void;
    // FNV-1a, inline: paths are short, and std::hash's call costs more
    // than the hashing. (The table holds only the routes' own paths, so
    // a client's choice of path cannot crowd a bucket.)
    std::size_t operator()(std::string_view s) const noexcept {
      std::uint64_t h = 14695981039346656037ull;
      for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
      return static_cast<std::size_t>(h);
    }
  };
  // path -> routes; looked up by string_view without a copy.
  std::unordered_map<std::string, std::vector<std::size_t>, path_hash, std::equal_to<>> _exact;
  std::vector<std::size_t> _patterns;
  // Each route on the heap, never moved: a suspended coroutine handler
  // refers to its lambda's captures where the route holds them, so adding
  // routes (the vector growing) must not move a handler.
  std::vector<std::unique_ptr<route>> _routes;
};

}  // namespace reef::http
