#include "http/server.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <cerrno>
#include <system_error>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/sleep.h"
#include "core/timer.h"
#include "http/reply_head.h"
#include "net/stack.h"

namespace reef::http {

namespace {

logger http_log("http");

// A streamed body's bytes as HTTP/1.1 chunks on the connection's stream.
// Each piece rearms the connection's send deadline: a streamed body may
// take as long as it likes, as long as the client keeps taking it.
class send_progress {
 public:
  send_progress(timer<lowres_clock>& deadline, lowres_clock::duration timeout) noexcept
      : _deadline(deadline), _timeout(timeout) {}
  void made() noexcept { _deadline.rearm(lowres_clock::now() + _timeout); }

 private:
  timer<lowres_clock>& _deadline;
  lowres_clock::duration _timeout;
};

class chunked_sink final : public data_sink_impl<char> {
 public:
  chunked_sink(output_stream<char>& out, send_progress progress) noexcept : _out(out), _progress(progress) {}

  future<> put(temporary_buffer<char> b) override {
    if (b.empty()) return make_ready_future<>();
    _progress.made();
    auto end = std::to_chars(_size_line, _size_line + sizeof(_size_line) - 2, b.size(), 16).ptr;
    *end++ = '\r';
    *end++ = '\n';
    _size_line_length = static_cast<std::size_t>(end - _size_line);
    return _out.write(_size_line, _size_line_length)
        .then([this, b = std::move(b)]() mutable { return _out.write(std::move(b)); })
        .then([this] { return _out.write("\r\n"); });
  }

  future<> close() override {
    _progress.made();
    return _out.write("0\r\n\r\n");
  }

 private:
  output_stream<char>& _out;
  send_progress _progress;
  char _size_line[24];  // lives until the write that copies it resolves
  std::size_t _size_line_length = 0;
};

// A streamed body as it is (HTTP/1.0: the connection's end marks the end).
class identity_sink final : public data_sink_impl<char> {
 public:
  // `limit`: the announced Content-Length; bytes past it are dropped (the
  // connection closes after such a reply).
  identity_sink(output_stream<char>& out, send_progress progress, std::size_t& written,
                std::optional<std::size_t> limit) noexcept
      : _out(out), _progress(progress), _written(written), _limit(limit) {}
  future<> put(temporary_buffer<char> b) override {
    _progress.made();
    const std::size_t before = _written;
    _written += b.size();
    if (_limit && _written > *_limit) b.trim(before < *_limit ? *_limit - before : 0);
    if (b.empty()) return make_ready_future<>();
    return _out.write(std::move(b));
  }
  future<> close() override { return make_ready_future<>(); }

 private:
  output_stream<char>& _out;
  send_progress _progress;
  std::size_t& _written;  // bytes of the body so far (past the limit too)
  std::optional<std::size_t> _limit;
};

// A request's share of the server's memory budget for buffered bodies: it
// grows as the body does (waiting for room, at most a given time) and goes
// back when the request is done.
class body_reservation {
 public:
  explicit body_reservation(semaphore& budget) noexcept : _budget(budget) {}
  ~body_reservation() { release(); }
  body_reservation(const body_reservation&) = delete;
  body_reservation& operator=(const body_reservation&) = delete;

  std::size_t units() const noexcept { return _units; }

  // Holds at least `bytes`; false if the room did not come within `wait`
  // (or the server is stopping).
  future<bool> grow_to(std::size_t bytes, std::chrono::milliseconds wait) {
    if (bytes <= _units) co_return true;
    const std::size_t more = bytes - _units;
    if (!_budget.try_wait(more)) {
      bool got = true;
      try {
        co_await _budget.wait(wait, more);
      } catch (...) {
        got = false;  // timed out, or broken by stop()
      }
      if (!got) co_return false;
    }
    _units += more;
    co_return true;
  }

  void release() noexcept {
    if (_units == 0) return;
    _budget.signal(_units);
    _units = 0;
  }

 private:
  semaphore& _budget;
  std::size_t _units = 0;
};

// Bytes read and dropped, at most, while closing a connection whose peer
// may still be sending (so that the kernel does not reset the connection
// before the peer has read our last reply).
constexpr std::size_t linger_bytes_max = 1 << 20;
constexpr auto linger_time_max = std::chrono::seconds(2);

}  // namespace

struct http_server::connection {
  connection(connected_socket s, const parser_limits& limits)
      : socket(std::move(s)), in(socket.input()), out(socket.output()), parser(limits) {}

  // Cuts a streamed body's source (which the handler may still hold) off
  // from this connection.
  void detach_body_reader() noexcept;

  connected_socket socket;
  input_stream<char> in;
  output_stream<char> out;
  request_parser parser;
  temporary_buffer<char> buf;  // read from `in`, not yet parsed
  // While a streamed request is served: its body's reader, and the source
  // the request's body_stream() reads through (nullptr once destroyed).
  std::unique_ptr<body_reader> reader;
  body_source* source = nullptr;
  // Deadlines on the reactor's clock (no clock read per request): for the
  // next bytes of a request (idle, head, body) and for the client to take
  // what is sent.
  timer<lowres_clock> deadline;
  timer<lowres_clock> send_deadline;
  // Waiting for bytes with no request in flight: stop() may end it.
  bool idle = false;
  bool timed_out = false;
  bool lingering = false;  // draining before the close: its deadline is no timeout
  std::list<connection*>::iterator self;
  // When the server started on the request being served (the latency
  // metric): its head parsed, or for one that was read behind the previous
  // one, when that one's reply was handed over (one clock read a request).
  std::chrono::steady_clock::time_point request_began;
  std::chrono::steady_clock::time_point replied_at;  // the last reply handed over, at once
  bool replied_just_now = false;  // ... and nothing was awaited since
};

// Reads a streamed request body from the connection, piece by piece, for
// the handler's body_stream(). Lives in the connection while a streamed
// request is served; the source the handler holds reaches it only while
// attached (a handler that keeps the stream past its request reads an
// error, never a connection that is gone).
class http_server::body_reader {
 public:
  body_reader(http_server& server, connection& c) noexcept : _server(server), _c(c) {}

  // The next piece of the body; empty at its end. Fails if the body is
  // malformed, ends early, or stops arriving for body_timeout. One read at
  // a time: a handler may give up on a read (a timeout) and return while
  // it is still in flight, and that read must finish before the server
  // reads on (or the connection goes): see idle().
  future<temporary_buffer<char>> next() {
    if (_busy) {
      return make_exception_future<temporary_buffer<char>>(
          std::logic_error("a request body read while another is in flight"));
    }
    _busy = true;
    return read_piece().finally([this] {
      _busy = false;
      if (_idle) {
        auto p = std::move(*_idle);
        _idle.reset();
        p.set_value();
      }
    });
  }

  // Resolves when no read is in flight.
  future<> idle() {
    if (!_busy) return make_ready_future<>();
    _idle.emplace();
    return _idle->get_future();
  }
  bool busy() const noexcept { return _busy; }

  std::uint64_t bytes() const noexcept { return _bytes; }

 private:
  future<temporary_buffer<char>> read_piece() {
    for (;;) {
      auto& p = _c.parser;
      if (p.state() == request_parser::status::failed) {
        throw std::runtime_error("malformed request body: " + p.error_reason());
      }
      if (!p.body_pending()) co_return temporary_buffer<char>();
      if (_c.buf.empty()) {
        // An idle body deadline: a streamed body may take as long as it
        // likes as long as it keeps coming.
        _c.deadline.rearm(lowres_clock::now() + _server._options.body_timeout);
        _c.buf = co_await _c.in.read();
        _server._stats.bytes_received += _c.buf.size();
        _c.deadline.cancel();
        if (_c.buf.empty()) throw std::runtime_error("the request body ended early");
      }
      std::size_t used = p.feed(_c.buf.view());
      std::string_view piece = p.body_piece();
      temporary_buffer<char> out;
      if (!piece.empty()) out = _c.buf.share(static_cast<std::size_t>(piece.data() - _c.buf.get()), piece.size());
      _c.buf.trim_front(used);
      _bytes += out.size();
      if (!out.empty()) co_return out;
    }
  }

  http_server& _server;
  connection& _c;
  std::uint64_t _bytes = 0;
  bool _busy = false;
  std::optional<promise<>> _idle;
};

// The data_source of request::body_stream().
class http_server::body_source final : public data_source_impl<char> {
 public:
  explicit body_source(connection& c) noexcept : _c(&c) { c.source = this; }
  ~body_source() override {
    if (_c != nullptr) _c->source = nullptr;
  }
  future<temporary_buffer<char>> get() override {
    if (_c == nullptr || _c->reader == nullptr) {
      return make_exception_future<temporary_buffer<char>>(
          std::logic_error("request body read after its request was answered"));
    }
    return _c->reader->next();
  }
  void detach() noexcept { _c = nullptr; }

 private:
  connection* _c;
};

void http_server::connection::detach_body_reader() noexcept {
  if (source != nullptr) {
    source->detach();
    source = nullptr;
  }
  reader.reset();
}

http_server::http_server(server_options options)
    : _options(std::move(options)),
      _heads(_options.server_name),
      _connection_slots(_options.connections_max),
      // At least one body of the largest size fits, or such a request
      // would wait for ever.
      _body_memory(std::max(_options.buffered_body_memory_max, _options.limits.body_max)) {
  register_metrics();
}

void http_server::register_metrics() {
  if (_options.metrics_name.empty()) return;
  // The first of "name", "name-2", "name-3", ... that no other server on
  // this shard took.
  std::string name = _options.metrics_name;
  for (unsigned n = 2; metrics::is_registered("http_connections_total", {{"server", name}}); ++n) {
    name = _options.metrics_name + "-" + std::to_string(n);
  }
  {
    const metrics::labels server{{"server", name}};
    std::vector<metrics::metric_definition> defs = {
        metrics::make_counter("connections_total", "Connections accepted.", _stats.connections_accepted, server),
        metrics::make_gauge("connections_open", "Connections being served.", _stats.connections_open, server),
        metrics::make_counter("requests_refused_total", "Requests refused without a handler (4xx/5xx).",
                              _stats.requests_refused, server),
        metrics::make_counter("requests_shed_total", "Requests refused with 503: no memory for their body.",
                              _stats.requests_shed, server),
        metrics::make_counter("timeouts_total", "Connections closed by a timeout.", _stats.timeouts, server),
        metrics::make_counter("bytes_received_total", "Bytes read from connections.", _stats.bytes_received, server),
        metrics::make_counter("bytes_sent_total", "Bytes handed to connections' sockets.",
                              [this] { return static_cast<double>(stats().bytes_sent); }, server),
        metrics::make_histogram("request_duration_seconds",
                                "Seconds from the server starting on a request (its head parsed; for one read behind "
                                "another, that one's reply handed over) to its reply handed to the connection.",
                                _latency_seconds, server),
    };
    for (unsigned c = 0; c < 5; ++c) {
      metrics::labels labels = server;
      labels.emplace_back("class", std::to_string(c + 1) + "xx");
      defs.push_back(metrics::make_counter("replies_total", "Replies sent, by status class.",
                                           _stats.replies_by_class[c], std::move(labels)));
    }
    _metrics.add_group("http", std::move(defs));
  }
}

http_server::~http_server() {
  REEF_ASSERT(_gate.get_count() == 0, "http_server destroyed while serving (call stop() first)");
}

future<> http_server::listen(socket_address address, listen_options options) {
  if (_stopping) {
    return make_exception_future<>(std::logic_error("http_server::listen after stop()"));
  }
  try {
    _listeners.push_back(reef::listen(address, options));
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
  server_socket& listener = _listeners.back();
  _gate.enter();
  (void)accept_loop(listener).finally([this] { _gate.leave(); });
  return make_ready_future<>();
}

std::vector<socket_address> http_server::listening_addresses() const {
  std::vector<socket_address> out;
  for (const auto& l : _listeners) out.push_back(l.local_address());
  return out;
}

future<> http_server::stop() {
  if (_stopping) co_return;
  _stopping = true;
  for (auto& l : _listeners) l.abort_accept();
  _connection_slots.broken();
  _body_memory.broken();  // bodies waiting for memory are refused (503)
  for (connection* c : _connections) {
    if (c->idle) c->socket.shutdown_input();
  }
  co_await _gate.close();
  // What the listeners run in the background (round-robin's accept loop)
  // ends before they go.
  for (auto& l : _listeners) co_await l.close();
  _listeners.clear();
}

future<> http_server::accept_loop(server_socket& listener) {
  for (;;) {
    try {
      co_await _connection_slots.wait();
    } catch (...) {
      co_return;  // stopping
    }
    accept_result accepted;
    bool back_off = false;
    try {
      accepted = co_await listener.accept();
    } catch (const std::system_error& e) {
      _connection_slots.signal();
      if (_stopping) co_return;
      int err = e.code().value();
      if (err == ECONNABORTED || err == EINTR) continue;  // the client gave up; the next one
      // Out of descriptors or memory: the connections we have may free
      // some; try again shortly.
      http_log.warn("accept failed: {}; retrying", e.what());
      back_off = true;
    }
    if (back_off) {
      co_await sleep(std::chrono::milliseconds(10));
      continue;
    }
    if (!_gate.try_enter()) {
      _connection_slots.signal();
      co_return;
    }
    ++_stats.connections_accepted;
    (void)serve(std::move(accepted.connection)).finally([this] {
      _connection_slots.signal();
      _gate.leave();
    });
  }
}

void http_server::append_head(std::string& out, const request* req, const reply& rep, bool keep_alive,
                              std::optional<std::size_t> content_length, bool chunked) {
  const connection_line connection = !keep_alive                                   ? connection_line::close
                                     : req != nullptr && req->is_http_1_0() ? connection_line::keep_alive
                                                                            : connection_line::none;
  _heads.append(out, rep.status, http_date(), rep.headers, content_length, chunked, connection);
}

void http_server::head_and_small_body(std::string& out, const request& req, const reply& rep, bool keep_alive,
                                      bool head_only) {
  const bool inline_body = !head_only && rep.content.size() <= inline_body_max;
  out.clear();
  out.reserve(160 + _options.server_name.size() + (inline_body ? rep.content.size() : 0));
  append_head(out, &req, rep, keep_alive, rep.content.size(), false);
  if (inline_body) out += rep.content;
}

future<bool> http_server::write_reply(connection& c, request& req, reply& rep, bool keep_alive) {
  const bool head_only = req.method == "HEAD" || bodiless_status(rep.status);
  std::string head;
  if (!rep.writer) {
    const bool inline_body = !head_only && rep.content.size() <= inline_body_max;
    head_and_small_body(head, req, rep, keep_alive, head_only);
    co_await c.out.write(head);
    if (!head_only && !inline_body) {
      auto* body = new std::string(std::move(rep.content));
      co_await c.out.write(temporary_buffer<char>(body->data(), body->size(), make_deleter([body] { delete body; })));
    }
    co_return keep_alive;
  }
  // A streamed body: of a known size, as it is after Content-Length;
  // otherwise chunked to HTTP/1.1, and to HTTP/1.0 as it is, ended by
  // closing the connection.
  const bool sized = rep.content_length.has_value();
  const bool chunked = !sized && !req.is_http_1_0() && !head_only;
  if (!sized && !chunked && !head_only) keep_alive = false;
  append_head(head, &req, rep, keep_alive, rep.content_length, chunked);
  co_await c.out.write(head);
  if (head_only) co_return keep_alive;
  std::unique_ptr<data_sink_impl<char>> sink;
  send_progress progress(c.send_deadline, _options.send_timeout);
  std::size_t written = 0;
  if (chunked) {
    sink = std::make_unique<chunked_sink>(c.out, progress);
  } else {
    sink = std::make_unique<identity_sink>(c.out, progress, written, rep.content_length);
  }
  output_stream<char> body(data_sink<char>(std::move(sink)), 8192);
  co_await rep.writer(body);
  co_await body.close();
  if (sized && written != *rep.content_length) {
    http_log.warn("{} {}: the body was {} bytes, not the {} announced; closing the connection", req.method,
                  req.path, written, *rep.content_length);
    co_return false;
  }
  co_return keep_alive;
}

future<> http_server::write_refusal(connection& c, int status, std::string_view reason) {
  if (status >= 100 && status <= 599) ++_stats.replies_by_class[status / 100 - 1];
  reply rep = reply::of(status);
  rep.content = std::to_string(status) + " " + std::string(reason_phrase(status)) + ": " + std::string(reason) + "\n";
  std::string head;
  append_head(head, nullptr, rep, false, rep.content.size(), false);
  head += rep.content;
  co_await c.out.write(head);
  co_await c.out.flush();
}

server_stats http_server::stats() const noexcept {
  server_stats s = _stats;
  for (const connection* c : _connections) s.bytes_sent += c->out.bytes_put();
  return s;
}

future<> http_server::serve(connected_socket socket) {
  connection c(std::move(socket), _options.limits);
  _connections.push_front(&c);
  c.self = _connections.begin();
  ++_stats.connections_open;
  // However serve() ends (an exception of any type included), the
  // connection leaves the list that stop() walks, and a streamed body's
  // reader (which a handler may have kept) is cut off from it.
  struct listed {
    http_server& server;
    connection& c;
    ~listed() {
      c.detach_body_reader();
      server._connections.erase(c.self);
      --server._stats.connections_open;
      server._stats.bytes_sent += c.out.bytes_put();
    }
  } listed_while_served{*this, c};
  c.deadline.set_callback([this, &c] {
    if (!c.timed_out && !c.lingering) ++_stats.timeouts;
    c.timed_out = true;
    c.socket.shutdown_input();
  });
  // A client that does not take what is sent: a blocked send fails, and
  // the connection ends (this also bounds stop()).
  c.send_deadline.set_callback([this, &c] {
    if (!c.timed_out) ++_stats.timeouts;
    c.timed_out = true;
    c.socket.shutdown_input();
    c.socket.shutdown_output();
  });
  auto arm_send = [this, &c] { c.send_deadline.rearm(lowres_clock::now() + _options.send_timeout); };
  try {
    c.socket.set_nodelay(true);
  } catch (...) {
  }

  bool need_flush = false;     // replies written and not yet flushed
  bool in_request = false;     // bytes of a request not yet complete were read
  bool continue_sent = false;  // "100 Continue" for the current request
  bool peer_done = false;      // the peer's end of stream was read
  bool may_linger = false;     // the peer may still be sending: drain before closing
  lowres_clock::time_point head_deadline;  // in_request: when the head must be in
  lowres_clock::time_point body_deadline;  // the head is in: when the body must be
  body_reservation reserved(_body_memory);  // the buffered body's share of the budget
  reply rep;  // each request's, reused (its fields and small body keep their memory)
  try {
    for (;;) {
      if (c.buf.empty()) {
        c.replied_just_now = false;  // (a wait may follow)
        if (need_flush) {
          arm_send();
          co_await c.out.flush();
          c.send_deadline.cancel();
          need_flush = false;
        }
        const bool head_pending = !c.parser.head_complete();
        if (_stopping && head_pending) break;
        c.deadline.rearm(!in_request  ? lowres_clock::now() + _options.idle_timeout
                         : head_pending ? head_deadline
                                        : body_deadline);
        c.idle = head_pending;
        if (!in_request) {
          // Between requests, nothing is kept that the client's next may
          // not need.
          c.parser.current().release_memory();
          rep = reply();
          _heads.trim();
          if (_head_buffer.capacity() > head_buffer_kept_max) std::string().swap(_head_buffer);
        }
        c.buf = co_await c.in.read();
        _stats.bytes_received += c.buf.size();
        c.idle = false;
        c.deadline.cancel();
        if (c.buf.empty()) {
          peer_done = !c.timed_out;
          if (c.timed_out && in_request && c.parser.state() == request_parser::status::need_more) {
            ++_stats.requests_refused;
            co_await write_refusal(c, 408, "the request took too long");
          }
          break;
        }
        if (!in_request) {
          in_request = true;
          head_deadline = lowres_clock::now() + _options.header_timeout;
        }
      }
      if (c.parser.body_begun() && !c.parser.body_streams() && c.parser.body_pending() &&
          !c.parser.content_length()) {
        // A chunked body, buffered: what this buffer may add to it must fit
        // the budget first (the whole length is reserved up front when it
        // is known).
        const std::size_t want =
            std::min(c.parser.current().content.size() + c.buf.size(), _options.limits.body_max);
        if (!co_await reserved.grow_to(want, _options.body_memory_wait)) {
          co_await shed(c);
          may_linger = true;
          break;
        }
      }
      std::size_t used = c.parser.feed(c.buf.view());
      c.buf.trim_front(used);
      auto state = c.parser.state();
      if (state == request_parser::status::need_more) c.replied_just_now = false;  // (waits may follow)
      if (state == request_parser::status::need_more && c.parser.head_complete() && c.parser.body_pending() &&
          !c.parser.body_begun()) {
        // The head is in and a body follows: streamed to the handler, or
        // buffered within the server's memory budget for bodies.
        const bool streamed = _routes.streams_body(c.parser.current());
        c.parser.begin_body(streamed);
        state = c.parser.state();  // (413: longer than the limit)
        if (state == request_parser::status::need_more) {
          body_deadline = lowres_clock::now() + _options.body_timeout;
          if (!streamed && c.parser.content_length() &&
              !co_await reserved.grow_to(*c.parser.content_length(), _options.body_memory_wait)) {
            co_await shed(c);
            may_linger = true;
            break;
          }
          if (!continue_sent && c.parser.expects_continue()) {
            continue_sent = true;
            arm_send();
            co_await c.out.write("HTTP/1.1 100 Continue\r\n\r\n");
            co_await c.out.flush();
            c.send_deadline.cancel();
          }
          if (streamed) {
            bool keep = co_await serve_streamed(c);
            need_flush = true;
            continue_sent = false;
            in_request = !c.buf.empty();
            if (in_request) head_deadline = lowres_clock::now() + _options.header_timeout;
            if (!keep) {
              may_linger = !c.buf.empty();
              break;
            }
            continue;
          }
        }
      }
      if (state == request_parser::status::failed) {
        may_linger = true;
        ++_stats.requests_refused;
        arm_send();
        co_await write_refusal(c, c.parser.error_status(), c.parser.error_reason());
        c.send_deadline.cancel();
        break;
      }
      if (state == request_parser::status::need_more) continue;
      // The handler works on the parser's request, which the next request
      // reuses (its strings and lists keep their memory).
      request& req = c.parser.current();
      continue_sent = false;
      in_request = !c.buf.empty();
      if (in_request) head_deadline = lowres_clock::now() + _options.header_timeout;
      c.request_began = c.replied_just_now ? c.replied_at : std::chrono::steady_clock::now();
      c.replied_just_now = false;
      if (auto later = _routes.run(req, rep)) rep = co_await std::move(*later);
      future<bool> finished = finish_request(c, req, rep);
      if (!finished.available() || need_preempt()) c.replied_just_now = false;  // (the co_await waits)
      bool keep = co_await std::move(finished);
      rep.clear();
      c.parser.reset();
      reserved.release();
      need_flush = true;
      if (!keep) {
        may_linger = !c.buf.empty();  // it sent more after a last request
        break;
      }
    }
    arm_send();
    co_await c.out.flush();
    c.send_deadline.cancel();
  } catch (const std::exception& e) {
    // The peer went away mid-reply, or a streamed body failed: nothing more
    // can be said on this connection.
    http_log.debug("connection from {} ends: {}", c.socket.remote_address(), e.what());
    peer_done = true;
  } catch (...) {
    http_log.debug("connection from {} ends: a failure that is not a std::exception",
                   c.socket.remote_address());
    peer_done = true;
  }
  c.deadline.cancel();
  c.send_deadline.cancel();
  reserved.release();
  if (c.reader && c.reader->busy()) {
    // A body read left in flight by a failure: end it, then let it finish
    // before the connection (which it reads) goes.
    c.socket.shutdown_input();
    co_await c.reader->idle();
  }
  c.detach_body_reader();
  try {
    co_await c.out.close();  // the peer reads the end of our stream
    // After a refusal, or a last request followed by more bytes, read what
    // the peer still sends (bounded), so that closing with unread bytes
    // does not reset the connection under our last reply.
    if (may_linger && !peer_done && !_stopping) {
      c.lingering = true;
      c.deadline.rearm(lowres_clock::now() + linger_time_max);
      c.idle = true;  // stop() ends it
      std::size_t dropped = 0;
      while (dropped < linger_bytes_max) {
        auto b = co_await c.in.read();
        if (b.empty()) break;
        dropped += b.size();
        _stats.bytes_received += b.size();
      }
      c.deadline.cancel();
    }
  } catch (...) {
  }
}

future<bool> http_server::finish_request(connection& c, request& req, reply& rep) noexcept {
  // (Not a coroutine, for speed; what throws fails the future.)
  try {
    if (rep.status < 200 || rep.status > 599) {
      // A final reply must be 2xx-5xx; anything else would break the
      // framing the client relies on.
      http_log.warn("{} {}: the handler's status {} is not a final status; sending 500", req.method, req.path,
                    rep.status);
      rep = reply::of(500);
    }
    ++_stats.requests_served;
    ++_stats.replies_by_class[rep.status / 100 - 1];
    const auto now = std::chrono::steady_clock::now();
    _latency_seconds.observe(std::chrono::duration<double>(now - c.request_began).count());
    c.replied_at = now;
    const bool keep_alive = req.keep_alive && !_stopping;
    const bool head_only = req.method == "HEAD" || bodiless_status(rep.status);
    if (!rep.writer && (head_only || rep.content.size() <= inline_body_max)) {
      // The common reply, a head and a small body: copied into the
      // connection's stream, done at once unless the stream has to wait for
      // the socket; only then is there a send to time (no timer, no
      // coroutine frame per request).
      // (The stream copies what it is given before write() returns: one
      // buffer serves every connection's heads.)
      head_and_small_body(_head_buffer, req, rep, keep_alive, head_only);
      future<> written = c.out.write(_head_buffer);
      if (written.available() && !written.failed()) {
        c.replied_just_now = true;
        return make_ready_future<bool>(keep_alive);
      }
      return wait_for_send(c, std::move(written), keep_alive);
    }
    return wait_for_send(c, write_reply(c, req, rep, keep_alive));
  } catch (...) {
    return make_exception_future<bool>(std::current_exception());
  }
}

future<bool> http_server::wait_for_send(connection& c, future<> sending, bool keep_alive) {
  c.send_deadline.rearm(lowres_clock::now() + _options.send_timeout);
  co_await std::move(sending);
  c.send_deadline.cancel();
  co_return keep_alive;
}

future<bool> http_server::wait_for_send(connection& c, future<bool> sending) {
  c.send_deadline.rearm(lowres_clock::now() + _options.send_timeout);
  bool keep = co_await std::move(sending);
  c.send_deadline.cancel();
  co_return keep;
}

future<> http_server::shed(connection& c) {
  ++_stats.requests_shed;
  ++_stats.requests_refused;
  http_log.debug("{} {}: no memory for its body within {} ms; 503", c.parser.current().method,
                 c.parser.current().path, _options.body_memory_wait.count());
  c.send_deadline.rearm(lowres_clock::now() + _options.send_timeout);
  co_await write_refusal(c, 503, "the server has no memory for the body now; try again later");
  c.send_deadline.cancel();
}

future<bool> http_server::serve_streamed(connection& c) {
  ++_stats.bodies_streamed;
  request& req = c.parser.current();
  c.reader = std::make_unique<body_reader>(*this, c);
  req._body = input_stream<char>(data_source<char>(std::make_unique<body_source>(c)));
  req._body_streamed = true;
  c.request_began = std::chrono::steady_clock::now();
  reply rep = co_await _routes.handle(req);
  bool keep = co_await finish_request(c, req, rep);
  c.replied_just_now = false;  // the drain below may wait
  // What the handler left unread is drained, within bounds; a body that
  // is malformed or would not end closes the connection instead. The
  // reply goes out first: the client may wait for it before it sends more.
  if (c.parser.body_pending()) {
    c.send_deadline.rearm(lowres_clock::now() + _options.send_timeout);
    co_await c.out.flush();
    c.send_deadline.cancel();
  }
  // A read the handler gave up on finishes first (bounded by body_timeout).
  co_await c.reader->idle();
  std::uint64_t drained = 0;
  while (keep && c.parser.body_pending() && c.parser.state() == request_parser::status::need_more) {
    if (drained > _options.unread_body_drain_max || _stopping) {
      keep = false;
      break;
    }
    auto b = co_await c.reader->next();
    drained += b.size();
  }
  if (c.parser.state() != request_parser::status::done) keep = false;
  c.detach_body_reader();
  c.parser.reset();
  co_return keep;
}

}  // namespace reef::http
