// Fuzzes the request parser. The first byte picks how the rest is cut into
// pieces; the rest is a connection's bytes (requests, pipelined or not).
// Whatever comes in, the parser must end each request in done or in a
// refusal with one of its documented statuses, respect its limits, and give
// the same result fed whole as fed in pieces.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/request_parser.h"

namespace {

using reef::http::parser_limits;
using reef::http::request_parser;

struct result {
  int status = 0;  // 0: done, else the refusal
  std::string path;
  std::string content;
  std::size_t used = 0;
};

// Parses the first request of `bytes`, in pieces of `piece` bytes; with
// `stream`, the body is taken piece by piece (body_piece()).
result first_request(std::string_view bytes, std::size_t piece, const parser_limits& limits, bool stream) {
  request_parser p(limits);
  result r;
  std::string streamed;
  bool began = false;
  while (r.used < bytes.size() && p.state() == request_parser::status::need_more) {
    if (!began && p.head_complete() && p.body_pending()) {
      began = true;
      p.begin_body(stream);
      if (p.state() != request_parser::status::need_more) break;
    }
    std::size_t n = std::min(piece, bytes.size() - r.used);
    std::size_t used = p.feed(bytes.substr(r.used, n));
    if (used > n) __builtin_trap();
    if (!stream && !p.body_piece().empty()) __builtin_trap();
    streamed.append(p.body_piece());
    r.used += used;
    if (used == 0 || (used < n && p.state() != request_parser::status::need_more)) break;
  }
  if (p.state() == request_parser::status::failed) {
    r.status = p.error_status();
    switch (r.status) {
      case 400: case 413: case 414: case 417: case 431: case 501: case 505:
        break;
      default:
        __builtin_trap();
    }
  } else if (p.state() == request_parser::status::done) {
    auto req = p.take();
    if (stream && !req.content.empty()) __builtin_trap();
    if (stream) req.content = std::move(streamed);
    if (req.content.size() > limits.body_max) __builtin_trap();
    if (req.headers.size() + req.trailers.size() > limits.header_fields_max) __builtin_trap();
    r.path = req.path;
    r.content = req.content;
  } else {
    r.status = -1;  // wants more
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t piece = 1 + data[0] % 17;
  const bool stream = data[0] & 0x80;  // the body buffered or streamed: the same bytes either way
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  parser_limits limits;
  limits.request_line_max = 256;
  limits.header_block_max = 512;
  limits.header_fields_max = 8;
  limits.body_max = 1024;
  limits.streamed_body_max = 1024;
  // Every request of the connection, one after the other.
  std::string_view rest = bytes;
  for (int i = 0; i < 64 && !rest.empty(); ++i) {
    result whole = first_request(rest, rest.size(), limits, false);
    result cut = first_request(rest, piece, limits, stream);
    if (whole.status != cut.status || whole.path != cut.path || whole.content != cut.content) __builtin_trap();
    if (whole.status == 0 && whole.used != cut.used) __builtin_trap();
    if (whole.status != 0 || whole.used == 0) break;
    rest.remove_prefix(whole.used);
  }
  return 0;
}
