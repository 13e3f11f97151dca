// The request parser: what it accepts, every limit and refusal, and that
// splitting the bytes anywhere changes nothing.
#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reef::http {
namespace {

struct outcome {
  request_parser::status state;
  int error = 0;
  request req;
  std::size_t used = 0;
};

// Feeds `data` until it is used up or the parser stops (done, failed);
// chooses a buffered body after a head, as the server does. Returns how
// much was used.
std::size_t feed_all(request_parser& p, std::string_view data) {
  std::size_t at = 0;
  while (p.state() == request_parser::status::need_more) {
    if (p.head_complete() && p.body_pending() && !p.body_begun()) {
      p.begin_body(false);
      continue;
    }
    if (at == data.size()) break;
    std::size_t used = p.feed(data.substr(at));
    at += used;
    if (used == 0) break;
  }
  return at;
}

// Feeds `bytes` in pieces of `piece` bytes (0: all at once) until the
// parser stops.
outcome parse(std::string_view bytes, std::size_t piece = 0, parser_limits limits = {}) {
  request_parser p(limits);
  outcome o;
  std::size_t at = 0;
  while (p.state() == request_parser::status::need_more) {
    if (p.head_complete() && p.body_pending() && !p.body_begun()) {
      p.begin_body(false);
      continue;
    }
    if (at == bytes.size()) break;
    std::size_t n = piece == 0 ? bytes.size() - at : std::min(piece, bytes.size() - at);
    std::size_t used = p.feed(bytes.substr(at, n));
    at += used;
    if (used == 0 || (used < n && p.state() != request_parser::status::need_more)) break;
  }
  o.state = p.state();
  o.error = p.error_status();
  o.used = at;
  if (o.state == request_parser::status::done) o.req = p.take();
  return o;
}

int status_of(std::string_view bytes, parser_limits limits = {}) {
  auto o = parse(bytes, 0, limits);
  if (o.state == request_parser::status::failed) return o.error;
  if (o.state == request_parser::status::done) return 200;
  return 0;  // still wants more
}

TEST(request_parser, a_simple_get) {
  auto o = parse("GET /hello?x=1&y=a%20b HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.method, "GET");
  EXPECT_EQ(o.req.target, "/hello?x=1&y=a%20b");
  EXPECT_EQ(o.req.path, "/hello");
  EXPECT_EQ(o.req.query, "x=1&y=a%20b");
  EXPECT_EQ(o.req.query_param("y"), "a b");
  EXPECT_EQ(o.req.query_param("z"), std::nullopt);
  EXPECT_EQ(o.req.version_minor, 1);
  EXPECT_EQ(o.req.headers.get("host"), "example");
  EXPECT_EQ(o.req.headers.get("USER-AGENT"), "t");
  EXPECT_TRUE(o.req.keep_alive);
  EXPECT_TRUE(o.req.content.empty());
}

TEST(request_parser, paths_are_percent_decoded_and_absolute_targets_accepted) {
  auto o = parse("GET /a%20b/%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.path, "/a b/\xC3\xA9");
  o = parse("GET http://example.org/x?q HTTP/1.1\r\nHost: example.org\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.path, "/x");
  EXPECT_EQ(o.req.query, "q");
  o = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.path, "*");
}

TEST(request_parser, dot_segments_are_resolved_and_encoded_slashes_refused) {
  struct {
    const char* target;
    const char* path;  // nullptr: 400
  } cases[] = {
      {"/a/./b/../c", "/a/c"},
      {"/a/b/..", "/a/"},
      {"/a/.", "/a/"},
      {"/a/%2E%2e/b", "/b"},
      {"/.hidden/x.txt", "/.hidden/x.txt"},
      {"/a..b/c", "/a..b/c"},
      {"/a//b", "/a//b"},
      {"/..", nullptr},
      {"/a/../../etc/passwd", nullptr},
      {"/%2e%2e/etc", nullptr},
      {"/files/..%2F..%2Fetc", nullptr},
      {"/a%2Fb", nullptr},
      {"/a%00b", nullptr},
      {"/a%zz", nullptr},
  };
  for (const auto& c : cases) {
    auto o = parse(std::string("GET ") + c.target + " HTTP/1.1\r\nHost: h\r\n\r\n");
    if (c.path == nullptr) {
      EXPECT_EQ(o.state, request_parser::status::failed) << c.target;
      EXPECT_EQ(o.error, 400) << c.target;
    } else {
      EXPECT_EQ(o.state, request_parser::status::done) << c.target;
      EXPECT_EQ(o.req.path, c.path) << c.target;
      EXPECT_EQ(o.req.target, c.target) << "the target stays as sent";
    }
  }
}

TEST(request_parser, header_values_are_trimmed_and_kept_in_order) {
  auto o = parse("GET / HTTP/1.1\r\nHost:h\r\nX-A:  one \t\r\nx-a: two\r\nEmpty:\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.headers.get("x-a"), "one");
  EXPECT_EQ(o.req.headers.count("X-A"), 2u);
  EXPECT_EQ(o.req.headers.get("empty"), "");
  EXPECT_EQ(o.req.headers.size(), 4u);
}

TEST(request_parser, bare_lf_line_ends_and_leading_empty_lines_are_accepted) {
  auto o = parse("\r\n\nGET / HTTP/1.1\nHost: h\n\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.path, "/");
}

TEST(request_parser, content_length_bodies) {
  auto o = parse("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.content, "hello world");
  // Identical repeated values are one length.
  o = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.content, "abc");
}

TEST(request_parser, chunked_bodies_with_extensions_and_trailers) {
  auto o = parse(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n"
      "6\r\n world\r\n"
      "A \r\n0123456789\r\n"
      "0\r\nX-Checksum: 42\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done) << o.error;
  EXPECT_EQ(o.req.content, "hello world0123456789");
  EXPECT_EQ(o.req.trailers.get("x-checksum"), "42");
  EXPECT_FALSE(o.req.headers.contains("x-checksum"));
}

TEST(request_parser, connection_semantics_of_1_0_and_1_1) {
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").req.keep_alive);
  EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n").req.keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").req.keep_alive);
  auto old = parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(old.state, request_parser::status::done) << "HTTP/1.0 needs no Host";
  EXPECT_TRUE(old.req.is_http_1_0());
  EXPECT_FALSE(old.req.keep_alive);
  EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").req.keep_alive);
}

TEST(request_parser, expect_100_continue) {
  request_parser p;
  p.feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_TRUE(p.head_complete());
  EXPECT_TRUE(p.expects_continue());
  p.feed("a");
  EXPECT_FALSE(p.expects_continue()) << "the body has started: no interim reply";
  p.feed("bc");
  EXPECT_EQ(p.state(), request_parser::status::done);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n"), 417);
  // A bodiless request needs no Continue.
  request_parser q;
  q.feed("GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_FALSE(q.expects_continue());
  EXPECT_EQ(q.state(), request_parser::status::done);
}

TEST(request_parser, pipelined_requests_stop_at_each_end) {
  std::string two =
      "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
  request_parser p;
  std::size_t used = feed_all(p, two);
  ASSERT_EQ(p.state(), request_parser::status::done);
  EXPECT_EQ(p.take().path, "/1");
  p.reset();
  std::size_t used2 = feed_all(p, std::string_view(two).substr(used));
  ASSERT_EQ(p.state(), request_parser::status::done);
  EXPECT_EQ(used + used2, two.size());
  auto second = p.take();
  EXPECT_EQ(second.path, "/2");
  EXPECT_EQ(second.content, "ok");
}

TEST(request_parser, every_split_of_a_request_gives_the_same_result) {
  const std::string full =
      "POST /up%20load?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
      "Expect: 100-continue\r\nX-Long: " + std::string(100, 'v') + "\r\n\r\n"
      "3\r\nabc\r\n10;k=v\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
  auto whole = parse(full);
  ASSERT_EQ(whole.state, request_parser::status::done);
  EXPECT_EQ(whole.req.content, "abc0123456789abcdef");
  for (std::size_t cut = 1; cut < full.size(); ++cut) {
    request_parser p;
    std::size_t a = feed_all(p, std::string_view(full).substr(0, cut));
    ASSERT_EQ(a, cut) << "cut at " << cut;
    feed_all(p, std::string_view(full).substr(cut));
    ASSERT_EQ(p.state(), request_parser::status::done) << "cut at " << cut;
    auto r = p.take();
    EXPECT_EQ(r.path, whole.req.path);
    EXPECT_EQ(r.content, whole.req.content);
    EXPECT_EQ(r.trailers.get("t"), "1");
    EXPECT_EQ(r.headers.get("x-long"), whole.req.headers.get("x-long"));
  }
  // And byte by byte.
  auto bytewise = parse(full, 1);
  ASSERT_EQ(bytewise.state, request_parser::status::done);
  EXPECT_EQ(bytewise.req.content, whole.req.content);
}

// Streams the body of `bytes` fed in pieces of `piece`: what body_piece()
// hands out, joined.
std::string streamed_body(std::string_view bytes, std::size_t piece, request_parser& p) {
  std::string body;
  std::size_t at = 0;
  while (p.state() == request_parser::status::need_more && at < bytes.size()) {
    if (p.head_complete() && p.body_pending() && !p.body_begun()) p.begin_body(true);
    std::size_t n = std::min(piece, bytes.size() - at);
    std::size_t used = p.feed(bytes.substr(at, n));
    body.append(p.body_piece());
    at += used;
    if (used == 0) break;
  }
  return body;
}

TEST(request_parser, a_streamed_body_comes_in_pieces_and_is_never_stored) {
  const std::string chunked =
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n10;k=v\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
  const std::string sized = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nhello, world";
  for (std::size_t piece = 1; piece <= chunked.size(); ++piece) {
    request_parser p;
    EXPECT_EQ(streamed_body(chunked, piece, p), "abc0123456789abcdef") << piece;
    ASSERT_EQ(p.state(), request_parser::status::done) << piece;
    EXPECT_TRUE(p.body_streams());
    auto r = p.take();
    EXPECT_TRUE(r.content.empty()) << "a streamed body is handed out, not kept";
    EXPECT_EQ(r.trailers.get("t"), "1");
  }
  request_parser p;
  EXPECT_EQ(streamed_body(sized, 5, p), "hello, world");
  EXPECT_EQ(p.content_length(), 12u);
  // A streamed body is not bound by body_max, but by streamed_body_max.
  parser_limits small;
  small.body_max = 4;
  request_parser big(small);
  EXPECT_EQ(streamed_body(sized, 100, big), "hello, world");
  EXPECT_EQ(big.state(), request_parser::status::done);
  small.streamed_body_max = 8;
  request_parser capped(small);
  streamed_body(sized, 100, capped);
  EXPECT_EQ(capped.error_status(), 413);
  request_parser capped_chunks(small);
  streamed_body(chunked, 100, capped_chunks);
  EXPECT_EQ(capped_chunks.error_status(), 413);
}

TEST(request_parser, refusals_also_hold_at_every_split) {
  // A smuggling attempt refused whole is refused however it arrives.
  const std::string bad =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  for (std::size_t piece = 1; piece <= bad.size(); ++piece) {
    auto o = parse(bad, piece);
    EXPECT_EQ(o.state, request_parser::status::failed) << piece;
    EXPECT_EQ(o.error, 400) << piece;
  }
}

TEST(request_parser, limits_give_414_431_and_413) {
  parser_limits small;
  small.request_line_max = 64;
  small.header_block_max = 128;
  small.header_fields_max = 3;
  small.body_max = 10;
  EXPECT_EQ(status_of("GET /" + std::string(58, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", small), 414);
  EXPECT_EQ(status_of("GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n", small), 200);
  // Without a line end: refused as soon as the limit is passed.
  EXPECT_EQ(status_of("GET /" + std::string(100, 'a'), small), 414);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(130, 'v') + "\r\n\r\n", small), 431);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(200, 'v'), small), 431);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small), 431);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", small), 200);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", small), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", small), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n", small), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", small), 413);
  // Trailers count toward the header limits.
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n", small), 431);
  // The defaults are the documented ones.
  parser_limits d;
  EXPECT_EQ(d.request_line_max, 8192u);
  EXPECT_EQ(d.header_block_max, 65536u);
  EXPECT_EQ(d.header_fields_max, 100u);
  EXPECT_EQ(status_of("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(status_of(many + "\r\n"), 431);
}

// Request lines near the edges of the one-pass path ("METHOD /plain?query
// HTTP/1.x") and of the long way beside it split the same.
TEST(request_parser, request_lines_of_every_shape_split_alike) {
  struct {
    const char* line;
    const char* method;
    const char* target;
    const char* path;
    const char* query;
    int minor;
  } cases[] = {
      {"GET / HTTP/1.1", "GET", "/", "/", "", 1},
      {"GET /a/b HTTP/1.0", "GET", "/a/b", "/a/b", "", 0},
      {"GET /a? HTTP/1.1", "GET", "/a?", "/a", "", 1},
      {"GET /?x HTTP/1.1", "GET", "/?x", "/", "x", 1},
      {"GET /a?b?c/./d HTTP/1.1", "GET", "/a?b?c/./d", "/a", "b?c/./d", 1},
      {"GET /a?%zz HTTP/1.1", "GET", "/a?%zz", "/a", "%zz", 1},
      {"GET /a%41?%41 HTTP/1.1", "GET", "/a%41?%41", "/aA", "%41", 1},
      {"GET /.well-known/x HTTP/1.1", "GET", "/.well-known/x", "/.well-known/x", "", 1},
      {"GET /a/./b/../c HTTP/1.1", "GET", "/a/./b/../c", "/a/c", "", 1},
      {"GET /a. HTTP/1.1", "GET", "/a.", "/a.", "", 1},
      {"M-SEARCH /x HTTP/1.1", "M-SEARCH", "/x", "/x", "", 1},
      {"GET /x HTTP/1.9", "GET", "/x", "/x", "", 1},
      {"GET http://h/x?y HTTP/1.1", "GET", "http://h/x?y", "/x", "y", 1},
      {"GET /a:b@c!$&'()*+,;=~ HTTP/1.1", "GET", "/a:b@c!$&'()*+,;=~", "/a:b@c!$&'()*+,;=~", "", 1},
  };
  for (const auto& c : cases) {
    auto o = parse(std::string(c.line) + "\r\nHost: h\r\n\r\n");
    ASSERT_EQ(o.state, request_parser::status::done) << c.line;
    EXPECT_EQ(o.req.method, c.method) << c.line;
    EXPECT_EQ(o.req.target, c.target) << c.line;
    EXPECT_EQ(o.req.path, c.path) << c.line;
    EXPECT_EQ(o.req.query, c.query) << c.line;
    EXPECT_EQ(o.req.version_minor, c.minor) << c.line;
  }
  for (const char* bad : {"GET /a?x#y HTTP/1.1", "GET /a?x y HTTP/1.1", "GET /a\x80 HTTP/1.1", "GET /a?\x80 HTTP/1.1",
                          "GET /a HTTP/1.1x", "GET /a HTTP/1.", "GET /a HTTP/1.a", "GET /a  HTTP/1.1",
                          "GET /a\tHTTP/1.1", "GET /a HTTP/2.0", "G@T /a HTTP/1.1", " GET /a HTTP/1.1"}) {
    const int status = status_of(std::string(bad) + "\r\nHost: h\r\n\r\n");
    EXPECT_TRUE(status == 400 || status == 505) << bad << ": " << status;
  }
}

TEST(request_parser, malformed_requests_are_400) {
  for (const char* bad : {
           "GET\r\n\r\n",
           "GET /\r\n\r\n",
           "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
           "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTX/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
           "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET ftp://x/ HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET /%00 HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nName : v\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
           // A CR anywhere in the head's lines.
           "G\rET / HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
           "GET / \rHTTP/1.1\r\nHost: h\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nX\rY: v\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\n\rX: v\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nX: v\r\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\r\nx\r\n0\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
           "GET / HTTP/1.1\rHost: h\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n",
       }) {
    EXPECT_EQ(status_of(bad), 400) << bad;
  }
}

TEST(request_parser, smuggling_shapes_are_400) {
  for (const char* bad : {
           // Both framings.
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
           // Lengths that differ.
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n",
           // Transfer codings that do not end in chunked, or chunked twice.
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
           // Chunked in HTTP/1.0.
           "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           // Malformed chunks.
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc0\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n",
       }) {
    EXPECT_EQ(status_of(bad), 400) << bad;
  }
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
}

TEST(request_parser, chunked_framing_needs_crlf_where_a_bare_lf_would_smuggle) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(status_of(head + "3\r\nabc\r\n0\r\n\r\n"), 200);
  for (const char* bad_body : {
           "3\nabc\r\n0\r\n\r\n",    // the chunk-size line
           "3\r\nabc\n0\r\n\r\n",    // the line end after the data
           "3\r\nabc\r\n0\n\r\n",    // the last chunk
           "3\r\nabc\r\n0\r\nX: 1\n\r\n",  // a trailer
           "3\r\nabc\r\n0\r\n\n",    // the end of the trailers
       }) {
    EXPECT_EQ(status_of(head + bad_body), 400) << bad_body;
  }
}

TEST(request_parser, chunk_extensions_are_checked) {
  const std::string head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* good : {"3;a\r\nabc\r\n0\r\n\r\n", "3 ; a = b ;c=\"q \\\" s\"\r\nabc\r\n0\r\n\r\n",
                           "3;a=b;c\r\nabc\r\n0;last=1\r\n\r\n"}) {
    EXPECT_EQ(status_of(head + good), 200) << good;
  }
  for (const char* bad : {"3;\r\nabc\r\n0\r\n\r\n", "3;=b\r\nabc\r\n0\r\n\r\n", "3;a=\r\nabc\r\n0\r\n\r\n",
                          "3;a b\r\nabc\r\n0\r\n\r\n", "3;a=\"open\r\nabc\r\n0\r\n\r\n",
                          "3;a=b c\r\nabc\r\n0\r\n\r\n", "3;a=(b)\r\nabc\r\n0\r\n\r\n",
                          "3;a=\"x\"y\r\nabc\r\n0\r\n\r\n"}) {
    EXPECT_EQ(status_of(head + bad), 400) << bad;
  }
}

TEST(request_parser, the_host_value_must_be_an_authority) {
  auto with_host = [](std::string host) { return "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"; };
  for (const char* good : {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]", "[::1]:443",
                           "[fe80::1%25eth0]", "a-b_c~d.e", "xn--nxasmq6b", "h:", "", "[v1.fe:x]"}) {
    EXPECT_EQ(status_of(with_host(good)), 200) << "'" << good << "'";
  }
  for (const char* bad : {"exa mple", "a/b", "a@b", "h:x", "h:80:81", "[::1", "::1", "[::g]", "[::1]x",
                          "h?q", "h#f", "a\"b", "a%zz", "[]"}) {
    EXPECT_EQ(status_of(with_host(bad)), 400) << "'" << bad << "'";
  }
}

TEST(request_parser, a_later_http_1_minor_version_is_served_as_1_1) {
  auto o = parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n");
  ASSERT_EQ(o.state, request_parser::status::done);
  EXPECT_EQ(o.req.version_major, 1);
  EXPECT_EQ(o.req.version_minor, 1);
  EXPECT_TRUE(o.req.keep_alive);
  EXPECT_EQ(status_of("GET / HTTP/1.9\r\n\r\n"), 400) << "1.1's rules: Host is required";
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
}

TEST(request_parser, a_failed_parser_stays_failed_and_consumes_nothing_more) {
  request_parser p;
  p.feed("BAD\r\n");
  ASSERT_EQ(p.state(), request_parser::status::failed);
  EXPECT_FALSE(p.error_reason().empty());
  EXPECT_EQ(p.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0u);
  EXPECT_EQ(p.state(), request_parser::status::failed);
  p.reset();
  p.feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(p.state(), request_parser::status::done) << "reset() starts over";
}

TEST(request_parser, reset_empties_the_request_in_place) {
  request_parser p;
  // feed() stops after a head that a body follows: feed the rest too.
  auto feed_all = [&p](std::string_view data) {
    while (!data.empty()) {
      const std::size_t used = p.feed(data);
      if (used == 0) return;
      data.remove_prefix(used);
    }
  };
  feed_all("POST /a?b=c HTTP/1.0\r\nHost: h\r\nX-One: 1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nxyz");
  ASSERT_EQ(p.state(), request_parser::status::done);
  p.current().params.emplace_back("n", "v");  // as routes::handle() sets them
  p.reset();
  const request& r = p.current();
  EXPECT_TRUE(r.method.empty() && r.target.empty() && r.path.empty() && r.query.empty());
  EXPECT_TRUE(r.headers.empty());
  EXPECT_TRUE(r.trailers.empty());
  EXPECT_TRUE(r.content.empty());
  EXPECT_FALSE(r.content_length.has_value());
  EXPECT_TRUE(r.params.empty());
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.has_body_stream());
  p.feed("GET /b HTTP/1.1\r\nHost: g\r\n\r\n");
  ASSERT_EQ(p.state(), request_parser::status::done);
  EXPECT_EQ(p.current().path, "/b");
  EXPECT_EQ(p.current().headers.size(), 1u);
  EXPECT_FALSE(p.current().content_length.has_value());

  // A large buffered body's memory is not kept for the next request.
  const std::string big(request::kept_content_max * 4, 'b');
  p.reset();
  feed_all("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
  ASSERT_EQ(p.state(), request_parser::status::done);
  p.reset();
  EXPECT_LE(p.current().content.capacity(), request::kept_content_max);
}

TEST(request_parser, garbage_never_crashes_and_ends_in_a_clear_state) {
  // Deterministic pseudo-random bytes, with and without a plausible start.
  std::uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245 + 12345;
    return static_cast<char>((seed >> 16) & 0xff);
  };
  for (int round = 0; round < 2000; ++round) {
    std::string junk = round % 2 ? "GET / HTTP/1.1\r\n" : "";
    std::size_t n = 1 + (round * 7) % 300;
    for (std::size_t i = 0; i < n; ++i) junk += next();
    request_parser p;
    p.feed(junk);
    auto s = p.state();
    if (s == request_parser::status::failed) {
      EXPECT_TRUE(p.error_status() >= 400 && p.error_status() < 600);
    }
  }
}

TEST(percent_decode, decodes_and_refuses_malformed_escapes) {
  EXPECT_EQ(percent_decode("a%20b%2f"), "a b/");
  EXPECT_EQ(percent_decode("100%25"), "100%");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%g0"), std::nullopt);
}

}  // namespace
}  // namespace reef::http
