#include "http/reply_head.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/log.h"
#include "core/text.h"
#include "http/reply.h"

namespace reef::http {

namespace {

logger head_log("http");

}  // namespace

bool safe_field(std::string_view s) noexcept {
  // No early exit: the compiler checks 16 or 32 bytes at a time.
  bool line_break = false;
  for (char ch : s) line_break |= (ch == '\r') | (ch == '\n');
  return !line_break;
}

bool is_framing_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 10: return iequals(name, "connection");
    case 14: return iequals(name, "content-length");
    case 17: return iequals(name, "transfer-encoding");
    default: return false;
  }
}

bool bodiless_status(int status) noexcept { return status < 200 || status == 204 || status == 304; }

void reply_head_writer::append(std::string& out, int status, std::string_view date, const header_list& fields,
                               std::optional<std::size_t> content_length, bool chunked,
                               connection_line connection) {
  const bool same_start = _start_valid && _status == status && _date == date;
  if (_valid && same_start && _chunked == chunked && _content_length == content_length &&
      _connection == connection && std::equal(_fields.begin(), _fields.end(), fields.begin(), fields.end())) {
    out += _text;
    return;
  }
  // Each piece of the memory is marked stale before it changes, and whole
  // again only once nothing more can throw.
  _valid = false;
  if (!same_start) {
    _start_valid = false;
    char code[4] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10), ' '};
    _start.assign("HTTP/1.1 ");
    _start.append(code, 4);
    _start += reason_phrase(status);
    _start += "\r\nDate: ";
    _start += date;
    _start += "\r\nServer: ";
    _start += _server_name;
    _start += "\r\n";
    _date.assign(date);
    _status = status;
    _start_valid = true;
  }
  // Sized first (at most), then copied in place: one resize rather than
  // an append, with its checks, per piece.
  constexpr std::string_view framing_max = "Content-Length: 18446744073709551615\r\n";
  constexpr std::string_view keep_alive_line = "Connection: keep-alive\r\n";
  std::size_t size = _start.size() + framing_max.size() + keep_alive_line.size() + 2;
  for (const auto& [name, value] : fields) size += name.size() + value.size() + 4;
  const std::size_t at = out.size();
  out.resize(at + size);
  char* p = out.data() + at;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put(_start);
  for (const auto& [name, value] : fields) {
    if (is_framing_field(name)) continue;  // the server's to set
    if (!safe_field(name) || !safe_field(value)) {
      head_log.warn("dropped reply header '{}': it holds a line break", name);
      continue;
    }
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  if (chunked) {
    put("Transfer-Encoding: chunked\r\n");
  } else if (content_length && !bodiless_status(status)) {
    put("Content-Length: ");
    p = std::to_chars(p, p + 20, *content_length).ptr;
    put("\r\n");
  }
  if (connection == connection_line::close) {
    put("Connection: close\r\n");
  } else if (connection == connection_line::keep_alive) {
    put(keep_alive_line);
  }
  put("\r\n");
  out.resize(static_cast<std::size_t>(p - out.data()));
  _text.assign(out, at);
  _fields = fields;
  _fields_bytes = size;
  _content_length = content_length;
  _chunked = chunked;
  _connection = connection;
  _valid = true;
}

void reply_head_writer::trim() noexcept {
  // (The fields may hold more than the head: those left out of it.)
  if (_text.capacity() <= kept_max && _fields_bytes <= kept_max) return;
  _valid = false;
  std::string().swap(_text);
  _fields = header_list();
  _fields_bytes = 0;
}

}  // namespace reef::http
