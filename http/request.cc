#include "http/request.h"

#include <string>
#include <tuple>
#include <vector>

#include "core/assert.h"
#include "core/text.h"

namespace reef::http {

void request::clear() noexcept {
  method.clear();
  target.clear();
  path.clear();
  query.clear();
  version_major = 1;
  version_minor = 1;
  headers.clear();
  // Kept up to a small body's size: a connection does not hold on to the
  // largest body it has seen.
  if (content.capacity() > kept_content_max) {
    std::string().swap(content);
  } else {
    content.clear();
  }
  content_length.reset();
  trailers.clear();
  keep_alive = true;
  params.clear();
  if (_body_streamed) {
    _body = input_stream<char>();
    _body_streamed = false;
  }
}

void request::release_memory() noexcept {
  std::string().swap(content);
}

input_stream<char>& request::body_stream() noexcept {
  REEF_ASSERT(_body_streamed, "body_stream() of a request whose route does not stream its body");
  return _body;
}

std::optional<std::string_view> header_list::get(std::string_view name) const noexcept {
  for (const auto& [n, v] : _fields) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::size_t header_list::count(std::string_view name) const noexcept {
  std::size_t n = 0;
  for (const auto& f : _fields) n += iequals(f.first, name) ? 1 : 0;
  return n;
}

bool header_list::has_token(std::string_view name, std::string_view token) const noexcept {
  for (const auto& [n, v] : _fields) {
    if (!iequals(n, name)) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = text::trim(rest.substr(0, comma));
      if (iequals(item, token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

void header_list::set(std::string_view name, std::string value) {
  if (!_fields.empty()) remove(name);
  _fields.emplace_back(std::piecewise_construct, std::forward_as_tuple(name), std::forward_as_tuple(std::move(value)));
}

void header_list::remove(std::string_view name) {
  std::erase_if(_fields, [name](const auto& f) { return iequals(f.first, name); });
}

std::string_view request::param(std::string_view name) const noexcept {
  for (const auto& [n, v] : params) {
    if (n == name) return v;
  }
  return {};
}

std::optional<std::string> request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name) {
      std::string_view value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      std::string plus_as_space(value);
      for (char& c : plus_as_space) {
        if (c == '+') c = ' ';
      }
      return percent_decode(plus_as_space);
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int hi = text::hex_digit(text[i + 1]);
    int lo = text::hex_digit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string decode_path(std::string_view raw, const char*& error) {
  std::string out;
  if (!decode_path(raw, out, error)) return {};
  return out;
}

bool decode_path(std::string_view raw, std::string& out, const char*& error) {
  error = nullptr;
  if (raw.empty() || raw.front() != '/') {
    error = "the path does not start with '/'";
    return false;
  }
  // Most paths have neither escapes nor dot segments: taken as they are.
  bool plain = true;
  for (std::size_t i = 0; i < raw.size() && plain; ++i) {
    plain = raw[i] != '%' && !(raw[i] == '/' && i + 1 < raw.size() && raw[i + 1] == '.');
  }
  if (plain) {
    text::set_text(out, raw);
    return true;
  }
  std::vector<std::string> segments;
  std::string_view rest = raw.substr(1);  // raw starts with '/'
  for (;;) {
    auto slash = rest.find('/');
    auto decoded = percent_decode(rest.substr(0, slash));
    if (!decoded) {
      error = "malformed percent-encoding in the path";
      return false;
    }
    if (decoded->find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
      error = "an encoded '/' or NUL in the path";
      return false;
    }
    const bool last = slash == std::string_view::npos;
    if (*decoded == "..") {
      if (segments.empty()) {
        error = "the path climbs above the root";
        return false;
      }
      segments.pop_back();
      if (last) segments.emplace_back();  // "/a/b/.." is "/a/"
    } else if (*decoded == ".") {
      if (last) segments.emplace_back();  // "/a/." is "/a/"
    } else {
      segments.push_back(std::move(*decoded));
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  out.clear();
  out.reserve(raw.size());
  for (const auto& segment : segments) {
    out += '/';
    out += segment;
  }
  if (out.empty()) out = "/";
  return true;
}

}  // namespace reef::http
