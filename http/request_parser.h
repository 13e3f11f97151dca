// The incremental HTTP/1.1 request parser: fed the bytes of a connection as
// they arrive, in buffers of any size, it produces one request at a time.
//
//   request_parser p;
//   std::size_t used = p.feed(bytes);     // may stop early: the rest is the next request's
//   if (p.state() == request_parser::status::done) handle(p.take());
//   else if (p.state() == request_parser::status::failed) reply(p.error_status());
//   p.reset();                              // then feed the rest
//
// What it accepts (RFC 9112): a request line, header fields, and a body
// framed by Content-Length or by chunked transfer coding with trailers.
// It refuses, with the status a server should answer:
//   414  a request line longer than limits.request_line_max
//   431  a header block longer than limits.header_block_max, or more than
//        limits.header_fields_max fields (trailers count too)
//   413  a body longer than limits.body_max
//   400  anything malformed: bad request line, bare CR, obsolete line
//        folding, space before a colon, control characters, a missing or
//        repeated Host in HTTP/1.1, a Host that is not an authority
//        (RFC 3986 host and port), both Content-Length and
//        Transfer-Encoding, Content-Length values that differ, a
//        Transfer-Encoding that does not end in chunked, chunked in
//        HTTP/1.0, a malformed chunk or chunk extension, a bare LF
//        anywhere in chunked framing (these last close the doors to
//        request smuggling; a bare LF is accepted only in the start line
//        and the header fields, as RFC 9112 allows)
//   417  an Expect other than 100-continue
//   501  a transfer coding other than chunked
//   505  an HTTP major version other than 1 (a later 1.x is served as
//        1.1, RFC 9110 2.5)
// After a refusal the parser stays failed: the connection must close.
//
// Copies: a request line and header block that arrive in one buffer are
// parsed in place; only lines split across buffers are gathered first.
//
// Thread rules: one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/request.h"

namespace reef::http {

/// The parser's limits; each refusal names the status above.
struct parser_limits {
  /// The request line, in bytes (414 beyond).
  std::size_t request_line_max = 8 * 1024;
  /// The header fields together, in bytes (431 beyond).
  std::size_t header_block_max = 64 * 1024;
  /// The number of header fields (431 beyond).
  std::size_t header_fields_max = 100;
  /// A buffered body, in bytes, after de-chunking (413 beyond).
  std::size_t body_max = 8 * 1024 * 1024;
  /// A streamed body (begin_body(true)), in bytes (413 beyond). Unlimited
  /// by default: a streaming handler holds what it reads, not the body.
  std::uint64_t streamed_body_max = UINT64_MAX;
};

class request_parser {
 public:
  enum class status : std::uint8_t {
    need_more,  // feed more bytes
    done,       // a whole request: take() it
    failed,     // refused: error_status() and error_reason() say why
  };

  explicit request_parser(parser_limits limits = {}) : _limits(limits) {}

  /// Consumes the bytes of the current request from the front of `data`
  /// and returns how many; stops at the end of a request (the rest is the
  /// next one's), at a refusal, at the end of a head with a body to follow
  /// (so that the caller can choose begin_body()'s mode first), and, when
  /// the body streams, after each piece of it (body_piece()).
  std::size_t feed(std::string_view data);

  /// How the body that follows the head is taken: appended to
  /// current().content (`streamed` false; limits.body_max applies), or
  /// handed out piece by piece (body_piece(); limits.streamed_body_max
  /// applies). Fails the parser (413) if the announced length is over the
  /// limit. Without a call, the first body byte fed chooses buffered.
  /// REQUIRES: head_complete(), no body byte fed yet.
  void begin_body(bool streamed);
  /// Whether begin_body() was called (or chosen by feeding body bytes).
  bool body_begun() const noexcept { return _body_mode_chosen; }
  /// Whether the body is handed out (begin_body(true)).
  bool body_streams() const noexcept { return _streaming; }
  /// With a streamed body: the body bytes the last feed() consumed (de-
  /// chunked), pointing into the data it was given; empty if none.
  std::string_view body_piece() const noexcept { return _piece; }
  /// The body's length from Content-Length, if the head gave one.
  std::optional<std::uint64_t> content_length() const noexcept { return _content_length; }
  /// Whether the request has a body still to come (or being read).
  bool body_pending() const noexcept {
    return _phase == phase::body || _phase == phase::chunk_size || _phase == phase::chunk_data ||
           _phase == phase::chunk_data_end || _phase == phase::trailers;
  }

  status state() const noexcept;
  /// The request line and header fields are in (the body may follow).
  bool head_complete() const noexcept;
  /// The head is complete, asks for "100 Continue", and a body is still to
  /// come: the server should send the interim reply now.
  bool expects_continue() const noexcept;

  /// After failed: the status to answer (400, 413, 414, 417, 431, 501, 505)
  /// and a short reason.
  int error_status() const noexcept { return _error_status; }
  const std::string& error_reason() const noexcept { return _error_reason; }

  /// The request so far (complete once done).
  request& current() noexcept { return _request; }
  /// Moves the request out. REQUIRES: done.
  request take() noexcept { return std::move(_request); }

  /// Starts on the next request, in the same request object (current()
  /// keeps its memory; a request that was take()n out leaves an empty
  /// one). The limits stay.
  void reset();

  const parser_limits& limits() const noexcept { return _limits; }

 private:
  enum class phase : std::uint8_t {
    request_line,
    headers,
    body,            // Content-Length bytes
    chunk_size,      // a chunk-size line
    chunk_data,      // a chunk's bytes
    chunk_data_end,  // the CRLF after them
    trailers,
    done,
    failed,
  };

  // Feeds one line (without its line end) to the current phase.
  void on_line(std::string_view line);
  void on_request_line(std::string_view line);
  // Any request line, the rare forms too.
  void on_unusual_request_line(std::string_view line);
  void on_header_line(std::string_view line, header_list& into);
  void on_head_end();
  void on_chunk_size(std::string_view line);
  void fail(int status, std::string reason);
  // How long a line may grow in the current phase, and the status beyond.
  std::size_t line_max() const noexcept;
  int line_too_long_status() const noexcept;

  parser_limits _limits;
  phase _phase = phase::request_line;
  request _request;
  std::string _line;             // a line split across buffers, gathered
  std::size_t _header_bytes = 0;  // header block (and trailers) so far
  std::size_t _fields = 0;       // header fields (and trailers) so far
  std::uint64_t _body_left = 0;  // of Content-Length, or of the chunk
  std::uint64_t _body_seen = 0;  // body bytes so far (de-chunked)
  std::optional<std::uint64_t> _content_length;
  std::string_view _piece;       // streamed: what the last feed() handed out
  bool _body_mode_chosen = false;
  bool _streaming = false;
  bool _chunked = false;
  bool _expect_continue = false;
  int _error_status = 0;
  std::string _error_reason;
};

}  // namespace reef::http
