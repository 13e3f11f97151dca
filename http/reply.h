// An HTTP reply, as handlers build it.
//
//   reply r;                                         // 200
//   r.write_body("text/plain", "hello\n");           // Content-Length set when sent
//   reply big;
//   big.write_body("application/octet-stream", [](output_stream<char>& out) -> future<> {
//     co_await out.write(...);                       // sent chunked to HTTP/1.1
//   });
//   return make_ready_future<reply>(reply::of(404)); // a status with a short text body
//
// The server adds Date, Server, Content-Length (or Transfer-Encoding:
// chunked for a streamed body) and Connection as needed; a handler sets
// only what is specific to its reply.
//
// Thread rules: a reply belongs to the shard that builds it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/function.h"
#include "core/future.h"
#include "core/iostream.h"
#include "http/request.h"

namespace reef::http {

class http_server;

/// Writes a streamed body to `out`; the server chunk-encodes it.
using body_writer = noncopyable_function<future<>(output_stream<char>& out)>;

class reply {
 public:
  /// The status code (100-599).
  int status = 200;
  /// Fields the handler sets (Content-Type, Location, ...).
  header_list headers;
  /// The body, unless `writer` is set.
  std::string content;
  /// A streamed body, or empty.
  body_writer writer;
  /// A streamed body's size, where it is known: sent as Content-Length
  /// instead of chunking. The writer must write exactly this many bytes
  /// (otherwise the connection is closed after it, the only safe framing).
  std::optional<std::size_t> content_length;

  reply() = default;
  explicit reply(int status_code) : status(status_code) {}
  reply(reply&&) noexcept = default;
  reply& operator=(reply&&) noexcept = default;

  /// A reply with `status` and its reason phrase as a text body.
  static reply of(int status);

  // The setters return the reply, so that they chain; on a temporary they
  // return it by rvalue (`return reply().write_body(...);` moves).
  reply& set_status(int status_code) & noexcept {
    status = status_code;
    return *this;
  }
  reply&& set_status(int status_code) && noexcept { return std::move(set_status(status_code)); }
  reply& set_header(std::string_view name, std::string value) & {
    headers.set(name, std::move(value));
    return *this;
  }
  reply&& set_header(std::string_view name, std::string value) && {
    return std::move(set_header(name, std::move(value)));
  }
  /// Sets Content-Type and the body.
  reply& write_body(std::string_view content_type, std::string body) &;
  reply&& write_body(std::string_view content_type, std::string body) && {
    return std::move(write_body(content_type, std::move(body)));
  }
  /// Sets Content-Type and a streamed body.
  reply& write_body(std::string_view content_type, body_writer w) &;
  reply&& write_body(std::string_view content_type, body_writer w) && {
    return std::move(write_body(content_type, std::move(w)));
  }
  /// Sets Content-Type and a streamed body of `length` bytes.
  reply& write_body(std::string_view content_type, body_writer w, std::size_t length) & {
    write_body(content_type, std::move(w));
    content_length = length;
    return *this;
  }
  reply&& write_body(std::string_view content_type, body_writer w, std::size_t length) && {
    return std::move(write_body(content_type, std::move(w), length));
  }

 private:
  friend class http_server;
  // Empties it for the connection's next reply, keeping the memory of its
  // fields and of a body of up to kept_content_max bytes.
  void clear() noexcept;
  static constexpr std::size_t kept_content_max = 4096;
};

/// The reason phrase of `status` ("OK", "Not Found"), or "Unknown".
std::string_view reason_phrase(int status) noexcept;

/// The current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// formatted once per second per thread.
std::string_view http_date();

}  // namespace reef::http
