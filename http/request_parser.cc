#include "http/request_parser.h"

#include <cstring>

#include "core/assert.h"
#include "core/text.h"

namespace reef::http {

namespace {

// RFC 9110 tchar.
// Letters, digits and `extra`, by byte: one load per character on the
// parser's hot path.
struct char_class {
  constexpr explicit char_class(std::string_view extra) {
    for (int c = 0; c < 256; ++c) {
      in[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    for (char c : extra) in[static_cast<unsigned char>(c)] = true;
  }
  bool operator()(unsigned char c) const noexcept { return in[c]; }
  bool in[256] = {};
};

// RFC 9110 5.6.2 tchar.
constexpr char_class is_token_char("!#$%&'*+-.^_`|~");
// RFC 3986 unreserved and sub-delims: reg-name.
constexpr char_class is_reg_name_char_class("-._~!$&'()*+,;=");

// The bytes `in` holds.
template <typename In>
constexpr char_class char_class_of(In in) {
  char_class c("");
  for (int b = 0; b < 256; ++b) c.in[b] = in(b);
  return c;
}
// What a request target may hold (visible ASCII, but '#').
constexpr bool target_byte(int b) { return b > 0x20 && b < 0x7f && b != '#'; }
// In a target's path, what needs no second look: not '%' (an escape to
// decode), '/' (a "." segment may follow), '?' (the query begins).
constexpr char_class is_plain_path_char =
    char_class_of([](int b) { return target_byte(b) && b != '%' && b != '/' && b != '?'; });
constexpr char_class is_target_char = char_class_of(target_byte);

// string_view::find for the short spans of a head (a method, a field
// name): a loop, where a call to memchr costs more than the search.
std::size_t find_byte(std::string_view s, char c, std::size_t from = 0) noexcept {
  for (std::size_t i = from; i < s.size(); ++i) {
    if (s[i] == c) return i;
  }
  return std::string_view::npos;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!is_token_char(c)) return false;
  }
  return true;
}

// Field values: visible characters, obs-text, space and tab.
bool is_field_value(std::string_view s) noexcept {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

using text::hex_digit;
using text::trim;

// A chunk-size line (chunk extensions and all) longer than this is refused.
constexpr std::size_t chunk_line_max = 4096;

constexpr auto is_bws = text::is_blank;

// RFC 9110 5.6.4 qdtext and quoted-pair: the characters a quoted string
// holds as they are (besides '"' and '\\').
bool is_qdtext(unsigned char c) noexcept {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

// RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
// name a token, value a token or a quoted string; then the line ends
// (whitespace before the end is tolerated).
bool valid_chunk_extensions(std::string_view s) noexcept {
  std::size_t i = 0;
  auto skip_bws = [&] {
    while (i < s.size() && is_bws(s[i])) ++i;
  };
  auto token = [&] {
    std::size_t start = i;
    while (i < s.size() && is_token_char(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  for (;;) {
    skip_bws();
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_bws();
    if (!token()) return false;
    skip_bws();
    if (i == s.size() || s[i] != '=') continue;
    ++i;
    skip_bws();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '"') {
          closed = true;
          ++i;
          break;
        }
        if (c == '\\') {
          if (i + 1 == s.size()) return false;
          unsigned char q = static_cast<unsigned char>(s[i + 1]);
          if (!(q == '\t' || (q >= 0x20 && q != 0x7f))) return false;
          i += 2;
          continue;
        }
        if (!is_qdtext(c)) return false;
        ++i;
      }
      if (!closed) return false;
    } else if (!token()) {
      return false;
    }
  }
}

bool is_hex(char c) noexcept { return hex_digit(c) >= 0; }

// RFC 3986 unreserved / sub-delims: what a reg-name holds besides
// percent-escapes.
bool is_reg_name_char(char c) noexcept { return is_reg_name_char_class(static_cast<unsigned char>(c)); }

// RFC 9110 7.2: Host = uri-host [ ":" port ], uri-host an IP-literal
// ("[" IPv6 or IPvFuture "]"), an IPv4 address or a reg-name (IPv4 is one),
// port = *DIGIT. Empty is valid (a target without an authority).
bool valid_host(std::string_view h) noexcept {
  std::size_t i = 0;
  if (!h.empty() && h[0] == '[') {
    auto close = h.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view literal = h.substr(1, close - 1);
    if (literal[0] == 'v' || literal[0] == 'V') {
      // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
      std::size_t j = 1;
      while (j < literal.size() && is_hex(literal[j])) ++j;
      if (j == 1 || j == literal.size() || literal[j] != '.' || j + 1 == literal.size()) return false;
      for (++j; j < literal.size(); ++j) {
        if (!is_reg_name_char(literal[j]) && literal[j] != ':') return false;
      }
    } else {
      // IPv6 (with an RFC 6874 zone id, "%25" then the zone).
      std::string_view zone;
      if (auto pct = literal.find('%'); pct != std::string_view::npos) {
        zone = literal.substr(pct);
        literal = literal.substr(0, pct);
        if (zone.size() < 4 || zone.substr(0, 3) != "%25") return false;
        for (char c : zone.substr(3)) {
          if (!is_reg_name_char(c) || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' ||
              c == '*' || c == '+' || c == ',' || c == ';' || c == '=') {
            return false;
          }
        }
      }
      if (literal.find(':') == std::string_view::npos) return false;
      for (char c : literal) {
        if (!is_hex(c) && c != ':' && c != '.') return false;
      }
    }
    i = close + 1;
  } else {
    while (i < h.size() && h[i] != ':') {
      if (h[i] == '%') {
        if (i + 2 >= h.size() || !is_hex(h[i + 1]) || !is_hex(h[i + 2])) return false;
        i += 3;
        continue;
      }
      if (!is_reg_name_char(h[i])) return false;
      ++i;
    }
  }
  if (i == h.size()) return true;
  if (h[i] != ':') return false;
  for (++i; i < h.size(); ++i) {
    if (h[i] < '0' || h[i] > '9') return false;
  }
  return true;
}

}  // namespace

request_parser::status request_parser::state() const noexcept {
  switch (_phase) {
    case phase::done:
      return status::done;
    case phase::failed:
      return status::failed;
    default:
      return status::need_more;
  }
}

bool request_parser::head_complete() const noexcept {
  return _phase != phase::request_line && _phase != phase::headers && _phase != phase::failed;
}

bool request_parser::expects_continue() const noexcept {
  return _expect_continue && (_phase == phase::body || _phase == phase::chunk_size) && _body_seen == 0;
}

void request_parser::begin_body(bool streamed) {
  REEF_ASSERT(!_body_mode_chosen && head_complete(), "begin_body() once, after the head");
  _body_mode_chosen = true;
  _streaming = streamed;
  const std::uint64_t max = streamed ? _limits.streamed_body_max : _limits.body_max;
  if (_content_length && *_content_length > max) fail(413, "body too large");
}

void request_parser::reset() {
  _phase = phase::request_line;
  _request.clear();
  _line.clear();
  _header_bytes = 0;
  _fields = 0;
  _body_left = 0;
  _body_seen = 0;
  _content_length.reset();
  _piece = {};
  _body_mode_chosen = false;
  _streaming = false;
  _chunked = false;
  _expect_continue = false;
  _error_status = 0;
  _error_reason.clear();
}

void request_parser::fail(int status, std::string reason) {
  _phase = phase::failed;
  _error_status = status;
  _error_reason = std::move(reason);
}

std::size_t request_parser::line_max() const noexcept {
  switch (_phase) {
    case phase::request_line:
      return _limits.request_line_max;
    case phase::headers:
    case phase::trailers:
      return _header_bytes < _limits.header_block_max ? _limits.header_block_max - _header_bytes : 0;
    case phase::chunk_size:
      return chunk_line_max;
    default:  // chunk_data_end: nothing but the line end
      return 0;
  }
}

int request_parser::line_too_long_status() const noexcept {
  switch (_phase) {
    case phase::request_line:
      return 414;
    case phase::headers:
    case phase::trailers:
      return 431;
    default:
      return 400;
  }
}

std::size_t request_parser::feed(std::string_view data) {
  std::size_t used = 0;
  _piece = {};
  if (!_body_mode_chosen && body_pending() && !data.empty()) begin_body(false);
  while (used < data.size()) {
    switch (_phase) {
      case phase::done:
      case phase::failed:
        return used;
      case phase::body:
      case phase::chunk_data: {
        std::size_t take = data.size() - used;
        if (take > _body_left) take = static_cast<std::size_t>(_body_left);
        if (_streaming) {
          _piece = data.substr(used, take);
        } else {
          _request.content.append(data.data() + used, take);
        }
        used += take;
        _body_left -= take;
        _body_seen += take;
        if (_body_left == 0) _phase = _phase == phase::body ? phase::done : phase::chunk_data_end;
        if (_streaming) return used;  // one piece per feed()
        break;
      }
      default: {
        std::string_view rest = data.substr(used);
        const void* nl_at = std::memchr(rest.data(), '\n', rest.size());
        // A line may carry one CR before its LF beyond the limit.
        const std::size_t max = line_max() + 1;
        if (nl_at == nullptr) {
          if (_line.size() + rest.size() > max) {
            fail(line_too_long_status(), "line too long");
            return used;
          }
          _line.append(rest);
          return data.size();
        }
        std::size_t nl = static_cast<const char*>(nl_at) - rest.data();
        if (_line.size() + nl > max) {
          fail(line_too_long_status(), "line too long");
          return used;
        }
        std::string_view line;
        if (_line.empty()) {
          line = rest.substr(0, nl);
        } else {
          _line.append(rest.data(), nl);
          line = _line;
        }
        used += nl + 1;
        if (_phase == phase::headers || _phase == phase::trailers) _header_bytes += line.size() + 1;
        const bool crlf = !line.empty() && line.back() == '\r';
        if (crlf) line.remove_suffix(1);
        // A bare LF ends a line only in the start line and the header
        // fields (RFC 9112 2.2). In chunked framing a peer that reads it
        // otherwise would see other chunk boundaries than we do.
        if (!crlf && (_phase == phase::chunk_size || _phase == phase::chunk_data_end || _phase == phase::trailers)) {
          fail(400, "bare LF in chunked framing");
          return used;
        }
        const bool in_head = _phase == phase::headers;
        on_line(line);
        _line.clear();
        // The head is in and a body follows: the caller chooses how to
        // take it (begin_body()) before any of it is consumed.
        if (in_head && body_pending()) return used;
        break;
      }
    }
  }
  return used;
}

void request_parser::on_line(std::string_view line) {
  // A CR inside a line is refused: in the head by the checks of each part
  // (no method, target, version, field name or field value holds one;
  // request_parser_test feeds each), in chunked framing here.
  if (_phase != phase::request_line && _phase != phase::headers && find_byte(line, '\r') != std::string_view::npos) {
    fail(400, "bare CR in a line");
    return;
  }
  switch (_phase) {
    case phase::request_line:
      // Empty lines before a request are ignored (RFC 9112 2.2).
      if (!line.empty()) on_request_line(line);
      break;
    case phase::headers:
      if (line.empty()) {
        on_head_end();
      } else {
        on_header_line(line, _request.headers);
      }
      break;
    case phase::chunk_size:
      on_chunk_size(line);
      break;
    case phase::chunk_data_end:
      if (!line.empty()) {
        fail(400, "chunk data longer than its size");
      } else {
        _phase = phase::chunk_size;
      }
      break;
    case phase::trailers:
      if (line.empty()) {
        _phase = phase::done;
      } else {
        on_header_line(line, _request.trailers);
      }
      break;
    default:
      break;
  }
}

void request_parser::on_request_line(std::string_view line) {
  // Most request lines are "METHOD /plain/path?query HTTP/1.x": checked
  // and split in one pass. Any other (an escape or a dot segment in the
  // path, another target form, another version, a malformed line) goes
  // the long way, which also says what is wrong.
  const std::size_t n = line.size();
  std::size_t i = 0;
  while (i < n && is_token_char(static_cast<unsigned char>(line[i]))) ++i;
  const std::size_t sp1 = i;
  if (sp1 == 0 || i + 1 >= n || line[i] != ' ' || line[i + 1] != '/') return on_unusual_request_line(line);
  for (++i; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (is_plain_path_char(c)) continue;
    if (c != '/') break;
    if (i + 1 < n && line[i + 1] == '.') return on_unusual_request_line(line);
  }
  const std::size_t path_end = i;
  if (i < n && line[i] == '?') {
    for (++i; i < n && is_target_char(static_cast<unsigned char>(line[i])); ++i) {
    }
  }
  const std::size_t sp2 = i;
  constexpr std::string_view http_1_ = "HTTP/1.";
  if (n - sp2 != 9 || line[sp2] != ' ' || line.substr(sp2 + 1, 7) != http_1_ ||
      (line[n - 1] != '1' && line[n - 1] != '0')) {
    return on_unusual_request_line(line);
  }
  text::set_text(_request.method, line.substr(0, sp1));
  text::set_text(_request.target, line.substr(sp1 + 1, sp2 - sp1 - 1));
  text::set_text(_request.path, line.substr(sp1 + 1, path_end - sp1 - 1));
  text::set_text(_request.query, path_end == sp2 ? std::string_view() : line.substr(path_end + 1, sp2 - path_end - 1));
  _request.version_major = 1;
  _request.version_minor = line[n - 1] - '0';
  _phase = phase::headers;
}

void request_parser::on_unusual_request_line(std::string_view line) {
  auto sp1 = find_byte(line, ' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : find_byte(line, ' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    fail(400, "malformed request line");
    return;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) {
    fail(400, "malformed method");
    return;
  }
  if (target.empty()) {
    fail(400, "empty request target");
    return;
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f || c == '#') {
      fail(400, "malformed request target");
      return;
    }
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9') {
    fail(400, "malformed HTTP version");
    return;
  }
  int major = version[5] - '0';
  int minor = version[7] - '0';
  if (major != 1) {
    fail(505, "HTTP version not supported");
    return;
  }
  // A later 1.x is served as the highest we speak (RFC 9110 2.5).
  if (minor > 1) minor = 1;
  std::string_view path = target;
  if (target == "*") {
    if (method != "OPTIONS") {
      fail(400, "'*' is for OPTIONS only");
      return;
    }
  } else if (target.front() != '/') {
    // absolute-form: scheme://authority/path
    auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || !(iequals(target.substr(0, scheme_end), "http") ||
                                                  iequals(target.substr(0, scheme_end), "https"))) {
      fail(400, "malformed request target");
      return;
    }
    auto slash = target.find('/', scheme_end + 3);
    if (slash == scheme_end + 3) {
      fail(400, "absolute target without a host");
      return;
    }
    path = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  std::string_view query;
  if (auto q = find_byte(path, '?'); q != std::string_view::npos) {
    query = path.substr(q + 1);
    path = path.substr(0, q);
  }
  if (path == "*") {
    _request.path.assign("*");  // OPTIONS *
  } else {
    const char* error = nullptr;
    if (!decode_path(path, _request.path, error)) {
      fail(400, error);
      return;
    }
  }
  text::set_text(_request.method, method);
  text::set_text(_request.target, target);
  text::set_text(_request.query, query);
  _request.version_major = major;
  _request.version_minor = minor;
  _phase = phase::headers;
}

void request_parser::on_header_line(std::string_view line, header_list& into) {
  if (line.front() == ' ' || line.front() == '\t') {
    fail(400, "obsolete line folding");
    return;
  }
  // The name, then its colon.
  std::size_t colon = 0;
  while (colon < line.size() && is_token_char(static_cast<unsigned char>(line[colon]))) ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') {
    fail(400, "malformed header field");
    return;
  }
  std::string_view value = trim(line.substr(colon + 1));
  if (!is_field_value(value)) {
    fail(400, "control character in a header value");
    return;
  }
  if (++_fields > _limits.header_fields_max) {
    fail(431, "too many header fields");
    return;
  }
  into.add(line.substr(0, colon), value);
}

void request_parser::on_head_end() {
  request& r = _request;
  const bool http_1_1 = r.version_minor == 1;
  // One pass notes the fields that matter here; the rare ones are then
  // read in full.
  std::size_t hosts = 0;
  std::string_view host;
  bool has_length = false;
  bool has_transfer_encoding = false;
  bool has_expect = false;
  bool has_connection = false;
  for (const auto& [name, value] : r.headers) {
    switch (name.size()) {
      case 4:
        if (iequals(name, "host") && hosts++ == 0) host = value;
        break;
      case 6:
        has_expect |= iequals(name, "expect");
        break;
      case 10:
        has_connection |= iequals(name, "connection");
        break;
      case 14:
        has_length |= iequals(name, "content-length");
        break;
      case 17:
        has_transfer_encoding |= iequals(name, "transfer-encoding");
        break;
      default:
        break;
    }
  }
  if (hosts > 1 || (http_1_1 && hosts == 0)) {
    fail(400, hosts == 0 ? "no Host header" : "more than one Host header");
    return;
  }
  if (hosts == 1 && !valid_host(host)) {
    fail(400, "malformed Host");
    return;
  }
  if (has_transfer_encoding) {
    if (has_length) {
      fail(400, "both Content-Length and Transfer-Encoding");
      return;
    }
    if (!http_1_1) {
      fail(400, "Transfer-Encoding in HTTP/1.0");
      return;
    }
    std::vector<std::string_view> codings;
    for (const auto& [name, value] : r.headers) {
      if (!iequals(name, "transfer-encoding")) continue;
      std::string_view rest = value;
      for (;;) {
        auto comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        if (!item.empty()) codings.push_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    if (codings.empty() || !iequals(codings.back(), "chunked")) {
      fail(400, "Transfer-Encoding does not end in chunked");
      return;
    }
    for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
      if (iequals(codings[i], "chunked")) {
        fail(400, "chunked applied twice");
        return;
      }
    }
    if (codings.size() > 1) {
      fail(501, "transfer coding '" + std::string(codings.front()) + "' not supported");
      return;
    }
    _chunked = true;
  }
  std::uint64_t length = 0;
  if (has_length) {
    bool first = true;
    for (const auto& [name, value] : r.headers) {
      if (!iequals(name, "content-length")) continue;
      std::string_view rest = value;
      for (;;) {
        auto comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        if (item.empty()) {
          fail(400, "empty Content-Length");
          return;
        }
        std::uint64_t v = 0;
        for (char c : item) {
          if (c < '0' || c > '9') {
            fail(400, "malformed Content-Length");
            return;
          }
          if (v > (UINT64_MAX - 9) / 10) {
            fail(413, "body too large");
            return;
          }
          v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (!first && v != length) {
          fail(400, "Content-Length values differ");
          return;
        }
        length = v;
        first = false;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    _content_length = length;
    r.content_length = length;
  }
  if (auto expect = has_expect ? r.headers.get("expect") : std::nullopt) {
    if (iequals(*expect, "100-continue")) {
      _expect_continue = http_1_1;
    } else if (http_1_1) {
      fail(417, "unsupported expectation");
      return;
    }
  }
  r.keep_alive = http_1_1 ? !(has_connection && r.headers.has_token("connection", "close"))
                          : has_connection && r.headers.has_token("connection", "keep-alive");
  if (_chunked) {
    _phase = phase::chunk_size;
  } else if (length > 0) {
    _body_left = length;
    _phase = phase::body;
  } else {
    _phase = phase::done;
  }
}

void request_parser::on_chunk_size(std::string_view line) {
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size(); ++i) {
    int d = hex_digit(line[i]);
    if (d < 0) break;
    if (size > (UINT64_MAX >> 4)) {
      fail(413, "body too large");
      return;
    }
    size = size * 16 + static_cast<std::uint64_t>(d);
  }
  if (i == 0) {
    fail(400, "malformed chunk size");
    return;
  }
  // Then nothing, or chunk extensions.
  if (!valid_chunk_extensions(line.substr(i))) {
    fail(400, "malformed chunk size or extension");
    return;
  }
  if (size == 0) {
    _phase = phase::trailers;
    return;
  }
  const std::uint64_t max = _streaming ? _limits.streamed_body_max : _limits.body_max;
  if (size > max || _body_seen + size > max) {
    fail(413, "body too large");
    return;
  }
  _body_left = size;
  _phase = phase::chunk_data;
}

}  // namespace reef::http
