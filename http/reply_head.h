// The head of a reply (status line, Date, Server, the reply's fields, the
// framing and Connection lines) as it goes on the wire. The server's own:
// handlers build a `reply` and never see this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/request.h"

namespace reef::http {

/// Whether `s` holds no CR or LF (a field that may go into a head).
bool safe_field(std::string_view s) noexcept;
/// Connection, Content-Length, Transfer-Encoding: the server sets these.
bool is_framing_field(std::string_view name) noexcept;
/// Replies that never carry a body (1xx, 204, 304).
bool bodiless_status(int status) noexcept;

/// The Connection line a head ends with.
enum class connection_line : std::uint8_t {
  none,        // HTTP/1.1 keep-alive: the default, nothing said
  close,       // the connection closes after this reply
  keep_alive,  // an HTTP/1.0 client asked to keep the connection
};

/// Writes heads, one shard's. Most replies of a route have the head of
/// the one before (within the second): it remembers the last head and
/// copies it whole when the next is the same; otherwise the status line,
/// Date and Server (which change with the status and once a second) are
/// copied, and the rest written.
class reply_head_writer {
 public:
  explicit reply_head_writer(std::string server_name) : _server_name(std::move(server_name)) {}

  /// Appends the head to `out`: the status line, `date` and the server's
  /// name, `fields` (but the framing ones, and any holding a line break,
  /// which is logged), then Transfer-Encoding: chunked if `chunked`, else
  /// Content-Length if `content_length` (and the status may have a body),
  /// then `connection`. If it throws (no memory), `out` may hold part of a
  /// head and the writer remembers nothing: the next head is written anew.
  void append(std::string& out, int status, std::string_view date, const header_list& fields,
              std::optional<std::size_t> content_length, bool chunked, connection_line connection);

  /// Gives back the memory of an unusually large last head (kept up to
  /// kept_max bytes). For an idle moment.
  void trim() noexcept;
  static constexpr std::size_t kept_max = 4096;

 private:
  std::string _server_name;
  // The last head written. `_start_valid`: `_start` is the status line
  // of `_status` and `_date`; `_valid`: the rest is `_text`'s too.
  bool _valid = false;
  bool _start_valid = false;
  int _status = 0;
  std::string _date;   // the Date it has
  std::string _start;  // its status line, Date and Server
  header_list _fields;  // the reply's fields it was written from
  std::size_t _fields_bytes = 0;  // about what they hold
  std::optional<std::size_t> _content_length;
  bool _chunked = false;
  connection_line _connection = connection_line::none;
  std::string _text;  // the whole head
};

}  // namespace reef::http
