// The server end to end over 127.0.0.1, with a small client written here
// for exact control of the bytes (real clients are in httpd_test.sh).
// Runs on both reactor backends.
#include "http/server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/function.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "core/when_all.h"
#include "core/with_timeout.h"
#include "net/stack.h"

namespace reef::http {
namespace {

using namespace std::chrono_literals;

struct response {
  int status = 0;
  header_list headers;
  std::string body;
};

// A raw client connection.
class client {
 public:
  static future<client> connect_to(socket_address a) {
    client c;
    c._socket = co_await connect(a);
    c._in = c._socket.input();
    c._out = c._socket.output();
    co_return c;
  }

  future<> send(std::string bytes) {
    co_await _out.write(bytes);
    co_await _out.flush();
  }

  // Reads one response; a body by Content-Length, chunks, or to the end
  // (`head_only` for HEAD). Fails on end of stream before a whole head.
  future<response> read_response(bool head_only = false) {
    response r;
    std::string head = co_await read_until("\r\n\r\n");
    if (head.empty()) throw std::runtime_error("end of stream before a response");
    auto line_end = head.find("\r\n");
    r.status = std::stoi(head.substr(9, 3));
    std::size_t at = line_end + 2;
    while (at < head.size() - 2) {
      auto e = head.find("\r\n", at);
      auto line = head.substr(at, e - at);
      auto colon = line.find(':');
      r.headers.add(line.substr(0, colon), line.substr(colon + 2));
      at = e + 2;
    }
    if (head_only || r.status < 200 || r.status == 204 || r.status == 304) co_return r;
    if (auto len = r.headers.get("content-length")) {
      r.body = co_await read_exactly(std::stoul(std::string(*len)));
    } else if (r.headers.has_token("transfer-encoding", "chunked")) {
      for (;;) {
        std::string size_line = co_await read_until("\r\n");
        std::size_t n = std::stoul(size_line, nullptr, 16);
        if (n == 0) {
          co_await read_until("\r\n");
          break;
        }
        r.body += co_await read_exactly(n);
        co_await read_exactly(2);
      }
    } else {
      r.body = co_await read_to_end();
    }
    co_return r;
  }

  // Whether the server closed its side (reads end of stream), waiting at
  // most `limit`.
  future<bool> closed_by_server(std::chrono::milliseconds limit = 5000ms) {
    auto rest = co_await with_timeout(lowres_clock::now() + limit, read_to_end());
    co_return rest.empty();
  }

  future<std::string> read_to_end() {
    std::string all = std::move(_pending);
    _pending.clear();
    for (;;) {
      auto b = co_await _in.read();
      if (b.empty()) co_return all;
      all.append(b.view());
    }
  }

  connected_socket& socket() { return _socket; }

 private:
  future<std::string> read_until(std::string_view end) {
    for (;;) {
      auto at = _pending.find(end);
      if (at != std::string::npos) {
        std::string out = _pending.substr(0, at + end.size());
        _pending.erase(0, at + end.size());
        co_return out;
      }
      auto b = co_await _in.read();
      if (b.empty()) co_return std::string();
      _pending.append(b.view());
    }
  }
  future<std::string> read_exactly(std::size_t n) {
    while (_pending.size() < n) {
      auto b = co_await _in.read();
      if (b.empty()) break;
      _pending.append(b.view());
    }
    std::string out = _pending.substr(0, n);
    _pending.erase(0, std::min(n, _pending.size()));
    co_return out;
  }

  connected_socket _socket;
  input_stream<char> _in;
  output_stream<char> _out;
  std::string _pending;
};

// How many times /slow has begun (a test waits for it rather than sleeping).
thread_local unsigned slow_handlers_started = 0;

// Waits until `done()`, checking every millisecond, at most 10 s.
future<bool> eventually(noncopyable_function<bool()> done) {
  auto until = lowres_clock::now() + 10s;
  while (!done() && lowres_clock::now() < until) co_await sleep(1ms);
  co_return done();
}

void add_test_routes(routes& r) {
  r.add("GET", "/hello", [](request&) { return reply().write_body("text/plain", "Hello, world!\n"); });
  r.add("POST", "/echo", [](request& req) { return reply().write_body("text/plain", std::move(req.content)); });
  r.add("GET", "/n/{n}", [](request& req) { return reply().write_body("text/plain", std::string(req.param("n"))); });
  r.add("GET", "/big", [](request&) { return reply().write_body("text/plain", std::string(1 << 20, 'b')); });
  r.add("GET", "/slow", [](request&) -> future<reply> {
    ++slow_handlers_started;
    co_await sleep(200ms);
    co_return reply().write_body("text/plain", "slow");
  });
  r.add("GET", "/stream", [](request&) {
    return reply().write_body("text/plain", [](output_stream<char>& out) -> future<> {
      for (int i = 0; i < 3; ++i) {
        co_await out.write("part" + std::to_string(i) + ";");
        co_await out.flush();
      }
    });
  });
  r.add("GET", "/throws", [](request&) -> reply { throw std::runtime_error("boom"); });
  r.add("GET", "/throws-int", [](request&) -> reply { throw 42; });
  r.add("GET", "/writer-throws-int", [](request&) {
    return reply().write_body("text/plain", [](output_stream<char>& out) -> future<> {
      co_await out.write("partial");
      co_await out.flush();
      throw 7;  // not a std::exception
    });
  });
  r.add("GET", "/inject", [](request&) {
    return reply().set_header("X-Evil", "a\r\nSet-Cookie: stolen").write_body("text/plain", "x");
  });
}

// A server on 127.0.0.1 (a port the kernel picks) for one test.
struct test_server {
  explicit test_server(server_options options = {}) : server(std::move(options)) {
    add_test_routes(server.get_routes());
  }
  future<> start() { return server.listen(socket_address::parse("127.0.0.1:0")); }
  socket_address address() const { return server.listening_addresses().front(); }
  http_server server;
};

REEF_TEST(http_server, keep_alive_serves_several_requests_on_one_connection) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  for (int i = 0; i < 3; ++i) {
    co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    response r = co_await c.read_response();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "Hello, world!\n");
    EXPECT_EQ(r.headers.get("content-length"), "14");
    EXPECT_EQ(r.headers.get("server"), "Reef");
    EXPECT_TRUE(r.headers.contains("date"));
    EXPECT_FALSE(r.headers.contains("connection"));
  }
  EXPECT_EQ(s.server.stats().requests_served, 3u);
  EXPECT_EQ(s.server.stats().connections_accepted, 1u);
  // Bytes sent: counted while the connection is open, and once more when
  // it closes (nothing twice).
  const std::uint64_t sent = s.server.stats().bytes_sent;
  EXPECT_GE(sent, 3 * (std::string("HTTP/1.1 200 OK\r\n").size() + 14));
  co_await s.server.stop();
  EXPECT_EQ(s.server.stats().connections_open, 0u);
  EXPECT_EQ(s.server.stats().bytes_sent, sent);
}

REEF_TEST(http_server, pipelined_requests_are_answered_in_order) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    if (i % 5 == 4) {
      std::string body = "body" + std::to_string(i);
      batch += "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    } else if (i == 7) {
      batch += "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    } else {
      batch += "GET /n/" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
    }
  }
  co_await c.send(batch);
  for (int i = 0; i < 20; ++i) {
    response r = co_await c.read_response();
    std::string expected = i % 5 == 4 ? "body" + std::to_string(i) : i == 7 ? "slow" : std::to_string(i);
    EXPECT_EQ(r.body, expected) << "reply " << i;
  }
  co_await s.server.stop();
}

// Requests on a connection reuse one request object: what one request
// had (fields, body, trailers, path parameters, a streamed body) is gone
// by the next.
REEF_TEST(http_server, a_request_carries_nothing_of_the_one_before_it) {
  test_server s;
  auto inspect = [](request& req) {
    std::string out = req.method + " " + req.target + " path=" + req.path + " query=" + req.query + " headers=";
    for (const auto& [name, value] : req.headers) out += name + ":" + value + ",";
    out += " content=" + req.content;
    out += " length=" + (req.content_length ? std::to_string(*req.content_length) : std::string("none"));
    out += " trailers=" + std::to_string(req.trailers.size());
    out += " params=" + std::to_string(req.params.size());
    out += std::string(" streamed=") + (req.has_body_stream() ? "yes" : "no");
    return reply().write_body("text/plain", std::move(out));
  };
  s.server.get_routes().add("POST", "/inspect/{x}", inspect);
  s.server.get_routes().add("GET", "/inspect", inspect);
  s.server.get_routes().add_streaming("POST", "/streamed", [](request& req) -> future<reply> {
    std::string body;
    for (;;) {
      auto b = co_await req.body_stream().read();
      if (b.empty()) break;
      body.append(b.view());
    }
    co_return reply().write_body("text/plain", std::move(body));
  });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send(
      "POST /inspect/one?q=1 HTTP/1.1\r\nHost: t\r\nX-First: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
      "GET /inspect HTTP/1.1\r\nHost: t\r\n\r\n"
      "POST /streamed HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nwxyz"
      "GET /inspect HTTP/1.1\r\nHost: t\r\n\r\n");
  response first = co_await c.read_response();
  EXPECT_EQ(first.body,
            "POST /inspect/one?q=1 path=/inspect/one query=q=1 headers=Host:t,X-First:a,Transfer-Encoding:chunked, "
            "content=abc length=none trailers=1 params=1 streamed=no");
  const std::string empty = "GET /inspect path=/inspect query= headers=Host:t, content= length=none trailers=0 params=0 streamed=no";
  EXPECT_EQ((co_await c.read_response()).body, empty);
  EXPECT_EQ((co_await c.read_response()).body, "wxyz");
  EXPECT_EQ((co_await c.read_response()).body, empty) << "after a streamed body";
  co_await s.server.stop();
}

// A body's buffer is kept for the connection's next request only while
// the client is sending: a connection that waits holds no body memory
// (which the server's body budget no longer counts).
REEF_TEST(http_server, a_waiting_connection_holds_no_body_memory) {
  test_server s;
  s.server.get_routes().add("POST", "/post", [](request& req) { return reply().write_body("text/plain", req.content); });
  s.server.get_routes().add("GET", "/capacity", [](request& req) {
    return reply().write_body("text/plain", std::to_string(req.content.capacity()));
  });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  const std::string body(8 * 1024, 'b');
  co_await c.send("POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ((co_await c.read_response()).body, body);
  co_await c.send("GET /capacity HTTP/1.1\r\nHost: t\r\n\r\n");
  const std::string capacity = (co_await c.read_response()).body;
  EXPECT_LT(std::stoul(capacity), 64u) << "the 8 KiB body's buffer is still held";
  co_await s.server.stop();
}

// Each head is the reply's own, though the server reuses the last head
// it wrote when the next reply's is the same.
REEF_TEST(http_server, heads_follow_each_reply_when_they_change) {
  test_server s;
  s.server.get_routes().add("GET", "/typed", [](request& req) {
    return reply().write_body(std::string(req.query), "x");
  });
  s.server.get_routes().add("GET", "/created", [](request&) {
    return reply().set_status(201).write_body("text/plain", "Hello, world!\n");
  });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  auto fields_of = [](const response& r) {
    std::string out = std::to_string(r.status);
    for (const auto& [name, value] : r.headers) {
      if (!iequals(name, "date")) out += "|" + name + ": " + value;
    }
    return out + "|" + r.body;
  };
  struct step {
    std::string request;
    std::string expected;
  };
  const std::string hello = "|Server: Reef|Content-Type: text/plain|Content-Length: 14";
  const std::vector<step> steps = {
      {"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", "200" + hello + "|Hello, world!\n"},
      {"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", "200" + hello + "|Hello, world!\n"},
      {"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       "200" + hello + "|Connection: keep-alive|Hello, world!\n"},
      {"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n", "200" + hello + "|Hello, world!\n"},
      {"GET /created HTTP/1.1\r\nHost: t\r\n\r\n", "201" + hello + "|Hello, world!\n"},
      {"GET /n/1234 HTTP/1.1\r\nHost: t\r\n\r\n",
       "200|Server: Reef|Content-Type: text/plain|Content-Length: 4|1234"},
      {"GET /n/5678 HTTP/1.1\r\nHost: t\r\n\r\n",
       "200|Server: Reef|Content-Type: text/plain|Content-Length: 4|5678"},
      {"GET /typed?a/b HTTP/1.1\r\nHost: t\r\n\r\n", "200|Server: Reef|Content-Type: a/b|Content-Length: 1|x"},
      {"GET /typed?c/d HTTP/1.1\r\nHost: t\r\n\r\n", "200|Server: Reef|Content-Type: c/d|Content-Length: 1|x"},
      {"GET /inject HTTP/1.1\r\nHost: t\r\n\r\n", "200|Server: Reef|Content-Type: text/plain|Content-Length: 1|x"},
      {"GET /inject HTTP/1.1\r\nHost: t\r\n\r\n", "200|Server: Reef|Content-Type: text/plain|Content-Length: 1|x"},
      {"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
       "200" + hello + "|Connection: close|Hello, world!\n"},
  };
  for (const auto& [request_text, expected] : steps) {
    co_await c.send(request_text);
    EXPECT_EQ(fields_of(co_await c.read_response()), expected) << request_text;
  }
  EXPECT_TRUE(co_await c.closed_by_server());
  co_await s.server.stop();
}

// A connection's replies share one reply object: each starts empty,
// whatever the handler before it set, returned or left behind.
REEF_TEST(http_server, a_reply_carries_nothing_of_the_one_before_it) {
  test_server s;
  auto& r = s.server.get_routes();
  r.add("GET", "/fill", [](request&, reply& rep) {
    rep.set_status(201).set_header("X-Fill", "1").write_body("text/x", std::string(5000, 'f'));
  });
  r.add("GET", "/empty", [](request&, reply& rep) {
    EXPECT_EQ(rep.status, 200);
    EXPECT_TRUE(rep.headers.empty()) << "a field of the reply before";
    EXPECT_TRUE(rep.content.empty()) << "the body of the reply before";
  });
  r.add("GET", "/chunks", [](request&, reply& rep) {
    rep.write_body("text/plain", [](output_stream<char>& out) { return out.write("streamed"); });
  });
  r.add("GET", "/returned", [](request&) { return reply(202).set_header("X-Returned", "1"); });
  r.add("GET", "/later", [](request&) -> future<reply> {
    co_await yield();
    co_return reply().set_header("X-Later", "1").write_body("text/plain", "later");
  });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  auto fields_of = [](const response& r) {
    std::string out = std::to_string(r.status);
    for (const auto& [name, value] : r.headers) {
      if (!iequals(name, "date") && !iequals(name, "server")) out += "|" + name + ": " + value;
    }
    return out + "|" + r.body;
  };
  const std::string empty = "200|Content-Length: 0|";
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"/fill", "201|X-Fill: 1|Content-Type: text/x|Content-Length: 5000|" + std::string(5000, 'f')},
      {"/empty", empty},
      {"/chunks", "200|Content-Type: text/plain|Transfer-Encoding: chunked|streamed"},
      {"/empty", empty},
      {"/returned", "202|X-Returned: 1|Content-Length: 0|"},
      {"/empty", empty},
      {"/later", "200|X-Later: 1|Content-Type: text/plain|Content-Length: 5|later"},
      {"/empty", empty},
      {"/nowhere", "404|Content-Type: text/plain|Content-Length: 14|404 Not Found\n"},
      {"/empty", empty},
  };
  // Pipelined, then one at a time.
  std::string all;
  for (const auto& [path, expected] : steps) all += "GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n";
  co_await c.send(all);
  for (const auto& [path, expected] : steps) EXPECT_EQ(fields_of(co_await c.read_response()), expected) << path;
  for (const auto& [path, expected] : steps) {
    co_await c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(fields_of(co_await c.read_response()), expected) << path << ", alone";
  }
  co_await s.server.stop();
}

REEF_TEST(http_server, a_malformed_request_gets_400_and_the_connection_closes) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGARBAGE\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  response ok = co_await c.read_response();
  EXPECT_EQ(ok.status, 200);
  response bad = co_await c.read_response();
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.headers.get("connection"), "close");
  EXPECT_TRUE(co_await c.closed_by_server()) << "nothing after the refusal";
  EXPECT_EQ(s.server.stats().requests_refused, 1u);
  // The server itself carries on.
  auto d = co_await client::connect_to(s.address());
  co_await d.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await d.read_response()).status, 200);
  co_await s.server.stop();
}

REEF_TEST(http_server, smuggling_is_refused_and_the_hidden_request_never_runs) {
  test_server s;
  co_await s.start();
  for (const char* attack : {
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\n\r\nGET /n/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\n"
           "abcGET /n/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
           "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
           "0\r\n\r\nGET /n/smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
       }) {
    auto c = co_await client::connect_to(s.address());
    co_await c.send(attack);
    response r = co_await c.read_response();
    EXPECT_EQ(r.status, 400) << attack;
    auto rest = co_await c.read_to_end();
    EXPECT_EQ(rest.find("smuggled"), std::string::npos) << "the hidden request was served";
  }
  co_await s.server.stop();
}

REEF_TEST(http_server, limits_answer_414_431_413) {
  server_options o;
  o.limits.body_max = 100;
  test_server s(o);
  co_await s.start();
  struct {
    std::string request;
    int status;
  } cases[] = {
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(70000, 'v') + "\r\n\r\n", 431},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413},
      {"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505},
  };
  for (auto& k : cases) {
    auto c = co_await client::connect_to(s.address());
    co_await c.send(k.request);
    response r = co_await c.read_response();
    EXPECT_EQ(r.status, k.status);
    EXPECT_TRUE(co_await c.closed_by_server());
  }
  co_await s.server.stop();
}

REEF_TEST(http_server, expect_100_continue_then_the_body) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  response interim = co_await c.read_response();
  EXPECT_EQ(interim.status, 100);
  co_await c.send("12345");
  response r = co_await c.read_response();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "12345");
  co_await s.server.stop();
}

REEF_TEST(http_server, chunked_uploads_and_streamed_replies) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  response echo = co_await c.read_response();
  EXPECT_EQ(echo.body, "abcde");
  co_await c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
  response streamed = co_await c.read_response();
  EXPECT_EQ(streamed.headers.get("transfer-encoding"), "chunked");
  EXPECT_EQ(streamed.body, "part0;part1;part2;");
  // To HTTP/1.0: the body as it is, ended by closing.
  auto old = co_await client::connect_to(s.address());
  co_await old.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  response plain = co_await old.read_response();
  EXPECT_FALSE(plain.headers.contains("transfer-encoding"));
  EXPECT_EQ(plain.headers.get("connection"), "close");
  EXPECT_EQ(plain.body, "part0;part1;part2;");
  co_await s.server.stop();
}

REEF_TEST(http_server, head_http_1_0_errors_and_header_injection) {
  test_server s;
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  response head = co_await c.read_response(true);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.get("content-length"), "14");
  co_await c.send("GET /throws HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).status, 500);
  co_await c.send("GET /inject HTTP/1.1\r\nHost: t\r\n\r\n");
  response injected = co_await c.read_response();
  EXPECT_FALSE(injected.headers.contains("set-cookie"));
  EXPECT_FALSE(injected.headers.contains("x-evil"));
  EXPECT_EQ(injected.body, "x");
  co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).status, 200) << "HEAD sent no body to confuse the next reply";
  auto old = co_await client::connect_to(s.address());
  co_await old.send("GET /hello HTTP/1.0\r\n\r\n");
  response r = co_await old.read_response();
  EXPECT_EQ(r.body, "Hello, world!\n");
  EXPECT_EQ(r.headers.get("connection"), "close");
  EXPECT_TRUE(co_await old.closed_by_server());
  co_await s.server.stop();
}

REEF_TEST(http_server, slow_heads_get_408_and_idle_connections_close) {
  server_options o;
  o.header_timeout = 1s;
  o.idle_timeout = 1s;
  test_server s(o);
  co_await s.start();
  auto slow = co_await client::connect_to(s.address());
  auto idle = co_await client::connect_to(s.address());
  auto start = std::chrono::steady_clock::now();
  // Slowloris: a head that trickles in and never ends.
  co_await slow.send("GET /hello HTTP/1.1\r\n");
  for (int i = 0; i < 3; ++i) {
    co_await sleep(50ms);
    co_await slow.send("X-" + std::to_string(i) + ": v\r\n");
    // Meanwhile others are served.
    auto other = co_await client::connect_to(s.address());
    co_await other.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ((co_await other.read_response()).status, 200);
  }
  response timed_out = co_await slow.read_response();
  EXPECT_EQ(timed_out.status, 408);
  EXPECT_TRUE(co_await slow.closed_by_server());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "the header timeout counts from the first byte";
  EXPECT_TRUE(co_await idle.closed_by_server()) << "an idle connection is closed";
  EXPECT_GE(s.server.stats().timeouts, 2u);
  co_await s.server.stop();
}

REEF_TEST(http_server, a_body_that_trickles_past_the_body_timeout_gets_408) {
  server_options o;
  o.body_timeout = 300ms;
  o.idle_timeout = 10s;  // each byte comes well within it
  test_server s(o);
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
  auto answer = c.read_response();
  for (int i = 0; i < 50 && !answer.available(); ++i) {
    co_await sleep(50ms);
    try {
      co_await c.send("d");
    } catch (const std::system_error&) {
      break;  // closed under us
    }
  }
  response r = co_await with_timeout(lowres_clock::now() + 5s, std::move(answer));
  EXPECT_EQ(r.status, 408);
  EXPECT_TRUE(co_await c.closed_by_server());
  EXPECT_EQ(s.server.stats().timeouts, 1u);
  co_await s.server.stop();
}

REEF_TEST(http_server, a_client_that_takes_no_replies_is_closed_and_stop_is_bounded) {
  server_options o;
  o.send_timeout = 300ms;
  test_server s(o);
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  std::string many;
  for (int i = 0; i < 32; ++i) many += "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
  co_await c.send(many);  // 32 MiB of replies, and the client reads none
  EXPECT_TRUE(co_await eventually([&] { return s.server.stats().timeouts >= 1; }));
  co_await with_timeout(lowres_clock::now() + 5s, s.server.stop());
  EXPECT_EQ(s.server.stats().connections_open, 0u);
}

REEF_TEST(http_server, a_status_that_is_not_final_becomes_500) {
  test_server s;
  s.server.get_routes().add("GET", "/odd", [](request&) { return reply(42); });
  s.server.get_routes().add("GET", "/early", [](request&) { return reply(101); });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("GET /odd HTTP/1.1\r\nHost: t\r\n\r\nGET /early HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).status, 500);
  EXPECT_EQ((co_await c.read_response()).status, 500);
  co_await s.server.stop();
}

REEF_TEST(http_server, a_streamed_body_of_known_size_has_content_length_and_a_wrong_size_closes) {
  test_server s;
  auto writer = [](std::string text) {
    return [text](output_stream<char>& out) { return out.write(text); };
  };
  s.server.get_routes().add("GET", "/sized", [&](request&) { return reply().write_body("text/plain", writer("0123456789"), 10); });
  s.server.get_routes().add("GET", "/short", [&](request&) { return reply().write_body("text/plain", writer("012"), 10); });
  s.server.get_routes().add("GET", "/long", [&](request&) { return reply().write_body("text/plain", writer("0123456789abc"), 10); });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("GET /sized HTTP/1.1\r\nHost: t\r\n\r\nGET /sized HTTP/1.1\r\nHost: t\r\n\r\n");
  for (int i = 0; i < 2; ++i) {
    response r = co_await c.read_response();
    EXPECT_EQ(r.headers.get("content-length"), "10");
    EXPECT_FALSE(r.headers.get("transfer-encoding").has_value()) << "not chunked";
    EXPECT_EQ(r.body, "0123456789");
  }
  co_await c.send("GET /short HTTP/1.1\r\nHost: t\r\n\r\n");
  response r = co_await c.read_response();
  EXPECT_EQ(r.body, "012") << "what there was, then the end: the framing cannot be kept";
  EXPECT_TRUE(co_await c.closed_by_server());
  auto d = co_await client::connect_to(s.address());
  co_await d.send("GET /long HTTP/1.1\r\nHost: t\r\n\r\n");
  response l = co_await d.read_response();
  EXPECT_EQ(l.body, "0123456789") << "no byte past the announced length";
  EXPECT_EQ(co_await d.read_to_end(), "") << "and then the end";
  co_await s.server.stop();
}

REEF_TEST(http_server, connections_beyond_the_cap_wait_their_turn) {
  server_options o;
  o.connections_max = 2;
  test_server s(o);
  co_await s.start();
  auto a = co_await client::connect_to(s.address());
  auto b = co_await client::connect_to(s.address());
  co_await a.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await b.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await a.read_response()).status, 200);
  EXPECT_EQ((co_await b.read_response()).status, 200);
  auto third = co_await client::connect_to(s.address());  // the kernel's queue takes it
  co_await third.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  auto waiting = third.read_response();
  co_await sleep(100ms);
  EXPECT_FALSE(waiting.available()) << "served beyond the cap";
  EXPECT_EQ(s.server.stats().connections_open, 2u);
  co_await a.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ((co_await a.read_response()).status, 200);
  EXPECT_EQ((co_await with_timeout(lowres_clock::now() + 5s, std::move(waiting))).status, 200);
  co_await s.server.stop();
}

REEF_TEST(http_server, failures_that_are_not_std_exceptions_end_the_connection_cleanly) {
  test_server s;
  co_await s.start();
  {
    auto c = co_await client::connect_to(s.address());
    co_await c.send("GET /throws-int HTTP/1.1\r\nHost: t\r\n\r\n");
    response r = co_await c.read_response();
    EXPECT_EQ(r.status, 500) << "a handler's failure of any type is a 500";
  }
  auto c = co_await client::connect_to(s.address());
  co_await c.send("GET /writer-throws-int HTTP/1.1\r\nHost: t\r\n\r\n");
  // The head and the first piece went out; then the connection ends, with
  // no last chunk (the client sees the reply cut short).
  std::string rest = co_await with_timeout(lowres_clock::now() + 5s, c.read_to_end());
  EXPECT_EQ(rest.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << rest;
  EXPECT_NE(rest.find("partial"), std::string::npos) << rest;
  EXPECT_EQ(rest.find("\r\n0\r\n\r\n"), std::string::npos) << "a failed body must not look complete";
  EXPECT_TRUE(co_await eventually([&] { return s.server.stats().connections_open == 0; }))
      << s.server.stats().connections_open << " connection(s) still counted open";
  co_await s.server.stop();  // touches no connection that is gone
}

// A suspended coroutine handler's captures live in the route; adding routes
// meanwhile must not move them.
REEF_TEST(http_server, adding_routes_while_a_handler_is_suspended_keeps_its_captures) {
  test_server s;
  promise<> release;
  auto released = release.get_future();
  int marker = 1234;
  s.server.get_routes().add("GET", "/suspends", [&marker, &released](request&) -> future<reply> {
    co_await std::move(released);
    co_return reply().write_body("text/plain", std::to_string(marker));
  });
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("GET /suspends HTTP/1.1\r\nHost: t\r\n\r\n");
  co_await sleep(20ms);  // the handler is suspended (nothing can resolve it but us)
  for (int i = 0; i < 200; ++i) {
    s.server.get_routes().add("GET", "/more/" + std::to_string(i), [](request&) { return reply::of(204); });
  }
  release.set_value();
  response r = co_await c.read_response();
  EXPECT_EQ(r.body, "1234");
  co_await s.server.stop();
}

// A streaming echo: the reply's body is the request's, copied piece by
// piece while it arrives.
void add_streaming_routes(routes& r) {
  r.add_streaming("POST", "/stream-echo", [](request& req) {
    EXPECT_TRUE(req.content.empty());
    auto copy = [&req](output_stream<char>& out) -> future<> {
      for (;;) {
        auto b = co_await req.body_stream().read();
        if (b.empty()) break;
        co_await out.write(std::move(b));
      }
    };
    if (req.content_length) return reply().write_body("application/octet-stream", copy, *req.content_length);
    return reply().write_body("application/octet-stream", copy);
  });
  r.add_streaming("POST", "/ignore-body", [](request&) { return reply().write_body("text/plain", "ignored"); });
  // Gives up on a read that takes too long, and answers while it is still
  // in flight.
  r.add_streaming("POST", "/impatient", [](request& req) -> future<reply> {
    try {
      co_await with_timeout(lowres_clock::now() + 20ms, req.body_stream().read());
    } catch (const timed_out_error&) {
      co_return reply().write_body("text/plain", "gave up");
    }
    co_return reply().write_body("text/plain", "read");
  });
}

std::string pattern_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

REEF_TEST(http_server, a_streamed_body_reaches_the_handler_as_it_arrives_whatever_its_size) {
  server_options o;
  o.limits.body_max = 1024;  // buffered bodies: small
  test_server s(o);
  add_streaming_routes(s.server.get_routes());
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  const std::string body = pattern_bytes(3 * 1024 * 1024);
  // Sized, and sent in pieces while the reply comes back.
  co_await c.send("POST /stream-echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\n\r\n");
  auto reading = c.read_response();
  for (std::size_t at = 0; at < body.size(); at += 100'000) co_await c.send(body.substr(at, 100'000));
  response r = co_await std::move(reading);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("content-length"), std::to_string(body.size()));
  EXPECT_TRUE(r.body == body) << "the echo differs (" << r.body.size() << " bytes)";
  // Chunked, with an extension and a trailer, on the same connection.
  std::string chunked;
  for (std::size_t at = 0; at < body.size(); at += 65'536) {
    std::size_t n = std::min<std::size_t>(65'536, body.size() - at);
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx;x=1\r\n", n);
    chunked += size_line + body.substr(at, n) + "\r\n";
  }
  chunked += "0\r\nT: 1\r\n\r\n";
  co_await c.send("POST /stream-echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  reading = c.read_response();
  co_await c.send(chunked);
  r = co_await std::move(reading);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == body) << "the chunked echo differs (" << r.body.size() << " bytes)";
  EXPECT_EQ(s.server.stats().bodies_streamed, 2u);
  // The buffered route still refuses what is over body_max.
  co_await c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).status, 413);
  co_await s.server.stop();
}

REEF_TEST(http_server, a_streamed_body_left_unread_is_drained_or_the_connection_closes) {
  server_options o;
  o.unread_body_drain_max = 64 * 1024;
  test_server s(o);
  add_streaming_routes(s.server.get_routes());
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'z') +
                  "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).body, "ignored");
  EXPECT_EQ((co_await c.read_response()).body, "Hello, world!\n") << "the small leftover was drained";
  const std::size_t big = 1024 * 1024;
  co_await c.send("POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(big) + "\r\n\r\n");
  response r = co_await c.read_response();
  EXPECT_EQ(r.body, "ignored");
  auto sending = c.send(std::string(big, 'y')).handle_exception([](std::exception_ptr) {});
  EXPECT_TRUE(co_await c.closed_by_server()) << "a megabyte unread is not drained";
  co_await std::move(sending);
  co_await s.server.stop();
}

REEF_TEST(http_server, a_body_read_the_handler_gave_up_on_finishes_before_the_server_reads_on) {
  test_server s;
  add_streaming_routes(s.server.get_routes());
  co_await s.start();
  auto c = co_await client::connect_to(s.address());
  co_await c.send("POST /impatient HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n");
  response r = co_await c.read_response();  // no body sent yet: the handler's read times out
  EXPECT_EQ(r.body, "gave up");
  co_await sleep(20ms);
  co_await c.send("hello");  // completes the abandoned read; the server drains the rest
  co_await c.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await c.read_response()).body, "Hello, world!\n") << "the connection goes on";
  co_await s.server.stop();
}

REEF_TEST(http_server, buffered_bodies_wait_for_memory_then_get_503) {
  server_options o;
  o.limits.body_max = 60'000;
  o.buffered_body_memory_max = 100'000;  // one body of 60 000 at a time
  o.body_memory_wait = 300ms;
  test_server s(o);
  co_await s.start();
  const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n";
  const std::string body(60'000, 'b');
  auto a = co_await client::connect_to(s.address());
  co_await a.send(head + body.substr(0, 1000));  // holds its 60 000 while the rest comes
  co_await sleep(20ms);
  auto b = co_await client::connect_to(s.address());
  co_await b.send(head + body);
  response refused = co_await b.read_response();
  EXPECT_EQ(refused.status, 503) << "no room within the wait";
  EXPECT_EQ(refused.headers.get("connection"), "close");
  EXPECT_EQ(s.server.stats().requests_shed, 1u);
  // A waiter that gets room in time is served.
  auto c = co_await client::connect_to(s.address());
  co_await c.send(head + body);
  co_await sleep(50ms);  // c waits for a's memory
  co_await a.send(body.substr(1000));
  EXPECT_EQ((co_await a.read_response()).body.size(), 60'000u);
  response served = co_await c.read_response();
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.body.size(), 60'000u);
  // Chunked bodies take their memory as they grow, within the same budget.
  auto d = co_await client::connect_to(s.address());
  co_await d.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ((co_await d.read_response()).body, "hello");
  co_await s.server.stop();
}

REEF_TEST(http_server, stop_finishes_requests_in_flight_and_closes_idle_ones) {
  test_server s;
  co_await s.start();
  auto address = s.address();
  auto busy = co_await client::connect_to(address);
  auto idle = co_await client::connect_to(address);
  co_await idle.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ((co_await idle.read_response()).status, 200);
  const unsigned before = slow_handlers_started;
  co_await busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_TRUE(co_await eventually([&] { return slow_handlers_started > before; }));
  auto stopped = s.server.stop();
  response r = co_await busy.read_response();
  EXPECT_EQ(r.body, "slow") << "the request in flight finished";
  EXPECT_EQ(r.headers.get("connection"), "close");
  EXPECT_TRUE(co_await idle.closed_by_server());
  co_await with_timeout(lowres_clock::now() + 5s, std::move(stopped));
  try {
    co_await connect(address);
    ADD_FAILURE() << "connected after stop()";
  } catch (const std::system_error&) {
  }
}

}  // namespace
}  // namespace reef::http
