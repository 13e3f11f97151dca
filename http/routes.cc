#include "http/routes.h"

#include <algorithm>
#include <stdexcept>

#include "core/log.h"

namespace reef::http {

namespace {

logger http_log("http");

std::vector<std::string_view> split_path(std::string_view path) {
  // "/a/b" -> {"a", "b"}; "/" -> {""}.
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

routes& routes::add_handler(std::string_view method, std::string_view pattern, handler h, immediate_handler now) {
  auto bad = [&](const char* why) {
    return std::invalid_argument("route " + std::string(method) + " '" + std::string(pattern) + "': " + why);
  };
  if (method.empty() || method.find_first_of(" \t\r\n/") != std::string_view::npos) throw bad("bad method");
  if (pattern.empty() || pattern.front() != '/') throw bad("a pattern starts with '/'");
  route r{std::string(method), std::string(pattern), {}, std::move(h), std::move(now)};
  bool has_params = pattern.find('{') != std::string_view::npos;
  if (has_params) {
    auto parts = split_path(pattern);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      std::string_view p = parts[i];
      if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
        std::string_view name = p.substr(1, p.size() - 2);
        bool rest = !name.empty() && name.back() == '*';
        if (rest) name.remove_suffix(1);
        if (name.empty() || name.find_first_of("{}*") != std::string_view::npos) throw bad("bad parameter");
        if (rest && i + 1 != parts.size()) throw bad("{name*} must be the last segment");
        r.segments.push_back({rest ? segment::kind::rest : segment::kind::param, std::string(name)});
      } else {
        if (p.find_first_of("{}") != std::string_view::npos) throw bad("braces inside a segment");
        r.segments.push_back({segment::kind::literal, std::string(p)});
      }
    }
  }
  for (const auto& other : _routes) {
    if (other->method == r.method && other->pattern == r.pattern) throw bad("already routed");
  }
  _routes.push_back(std::make_unique<route>(std::move(r)));
  std::size_t index = _routes.size() - 1;
  if (has_params) {
    _patterns.push_back(index);
  } else {
    _exact[std::string(pattern)].push_back(index);
  }
  return *this;
}

bool routes::matches(const route& r, std::string_view path,
                     std::vector<std::pair<std::string, std::string>>* params) {
  if (path.empty() || path.front() != '/') return false;
  std::string_view rest = path.substr(1);
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    const segment& s = r.segments[i];
    if (s.type == segment::kind::rest) {
      if (params) params->emplace_back(s.text, std::string(rest));
      return true;
    }
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (s.type == segment::kind::literal ? part != s.text : part.empty()) return false;
    if (s.type == segment::kind::param && params) params->emplace_back(s.text, std::string(part));
    if (i + 1 == r.segments.size()) return slash == std::string_view::npos;
    if (slash == std::string_view::npos) return false;  // the path ends before the pattern
    rest.remove_prefix(slash + 1);
  }
  return false;
}

template <typename Visit>
void routes::for_each_match(std::string_view path, Visit&& visit) {
  if (auto it = _exact.find(path); it != _exact.end()) {
    for (std::size_t i : it->second) {
      if (!visit(*_routes[i])) return;
    }
  }
  for (std::size_t i : _patterns) {
    if (matches(*_routes[i], path, nullptr) && !visit(*_routes[i])) return;
  }
}

std::string routes::allowed_methods(std::string_view path) const {
  std::vector<std::string> methods;
  const_cast<routes*>(this)->for_each_match(path, [&](const route& r) {
    methods.push_back(r.method);
    if (r.method == "GET") methods.emplace_back("HEAD");
    return true;
  });
  std::sort(methods.begin(), methods.end());
  methods.erase(std::unique(methods.begin(), methods.end()), methods.end());
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

routes::route* routes::find(const request& req, bool& path_known) {
  route* found = nullptr;
  route* get_for_head = nullptr;
  path_known = false;
  for_each_match(req.path, [&](route& r) {
    path_known = true;
    if (r.method == req.method) {
      found = &r;
      return false;
    }
    if (req.method == "HEAD" && r.method == "GET" && get_for_head == nullptr) get_for_head = &r;
    return true;
  });
  return found != nullptr ? found : get_for_head;
}

bool routes::streams_body(const request& req) {
  bool path_known = false;
  route* r = find(req, path_known);
  return r != nullptr && r->stream_body;
}

namespace {

// What a handler that failed gets: a logged line and 500.
reply failed(std::string_view method, std::string_view path, std::exception_ptr ex) {
  try {
    std::rethrow_exception(ex);
  } catch (const std::exception& e) {
    http_log.warn("handler for {} {} failed: {}", method, path, e.what());
  } catch (...) {
    http_log.warn("handler for {} {} failed with an unknown exception", method, path);
  }
  return reply::of(500);
}

}  // namespace

future<reply> routes::handle(request& req) {
  reply out;
  if (auto later = run(req, out)) return std::move(*later);
  return make_ready_future<reply>(std::move(out));
}

std::optional<future<reply>> routes::run(request& req, reply& out) {
  bool path_known = false;
  route* found = find(req, path_known);
  if (found == nullptr) {
    if (!path_known) {
      out = reply::of(404);
    } else {
      out = reply::of(405);
      out.set_header("Allow", allowed_methods(req.path));
    }
    return std::nullopt;
  }
  if (!found->segments.empty()) {
    req.params.clear();
    matches(*found, req.path, &req.params);
  }
  if (found->run_now) {
    try {
      found->run_now(req, out);
    } catch (...) {
      out = failed(req.method, req.path, std::current_exception());
    }
    return std::nullopt;
  }
  future<reply> f = [&]() -> future<reply> {
    try {
      return found->run(req);
    } catch (...) {
      return make_exception_future<reply>(std::current_exception());
    }
  }();
  if (f.available() && !f.failed()) return f;
  return f.handle_exception([method = req.method, path = req.path](std::exception_ptr ex) {
    return failed(method, path, std::move(ex));
  });
}

}  // namespace reef::http
