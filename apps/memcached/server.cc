#include "apps/memcached/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "core/coroutine.h"
#include "core/log.h"
#include "core/lw_shared_ptr.h"
#include "core/sleep.h"
#include "core/temporary_buffer.h"
#include "net/stack.h"
#include "smp/foreign_ptr.h"

namespace reef::memcached {

namespace {

logger memcached_log("memcached");

// The version "version" and "stats" report: the protocol's, and whose.
constexpr std::string_view version_text = "1.6.18-reef";

// A reply shorter than this that comes from another shard is appended to
// the connection's text; a longer one goes to the socket as it is.
constexpr std::size_t copy_max = 512;
// A multi-key get asks for this many keys at a time, and writes what it
// has once it holds this much.
constexpr std::size_t retrieval_batch_keys = 32;
constexpr std::size_t reply_bytes_max = 1 << 20;
// Index slots the expiry sweep looks at per second, per shard.
constexpr std::size_t sweep_slots_per_tick = 16384;
// memcached's UDP: an 8-byte frame header, replies in datagrams of at
// most 1400 bytes.
constexpr std::size_t udp_header_bytes = 8;
constexpr std::size_t udp_datagram_max = 1400;

// Wall-clock milliseconds since the epoch.
std::uint64_t unix_ms_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

void append_stat(std::string& out, std::string_view name, std::uint64_t value) {
  out += "STAT ";
  out += name;
  out += ' ';
  char text[24];
  out.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof(text), value).ptr - text));
  out += "\r\n";
}

void append_stat(std::string& out, std::string_view name, std::string_view value) {
  out += "STAT ";
  out += name;
  out += ' ';
  out += value;
  out += "\r\n";
}

using remote_reply = foreign_ptr<std::unique_ptr<std::string>>;
using remote_replies = foreign_ptr<std::unique_ptr<std::vector<std::string>>>;

}  // namespace

connection_stats& connection_stats::operator+=(const connection_stats& o) noexcept {
  curr_connections += o.curr_connections;
  total_connections += o.total_connections;
  rejected_connections += o.rejected_connections;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
  udp_datagrams += o.udp_datagrams;
  return *this;
}

// Replies in the order they are due: text made here, and buffers that
// came from other shards (sent as they are, freed on their shard).
struct memcached_server::reply_queue {
  // Where a long reply may be written before it is complete (a
  // connection's stream; none for a datagram).
  output_stream<char>* sink = nullptr;
  connection_stats* stats = nullptr;
  std::string text;
  std::vector<temporary_buffer<char>> pieces;
  std::size_t piece_bytes = 0;

  std::size_t bytes() const noexcept { return text.size() + piece_bytes; }
  bool empty() const noexcept { return text.empty() && pieces.empty(); }

  void seal() {
    if (text.empty()) return;
    pieces.emplace_back(text.data(), text.size());  // a copy; `text` keeps its memory
    piece_bytes += text.size();
    text.clear();
  }
  void append(std::string_view bytes, deleter owner) {
    if (bytes.size() <= copy_max) {
      text += bytes;
      return;
    }
    seal();
    pieces.emplace_back(const_cast<char*>(bytes.data()), bytes.size(), std::move(owner));
    piece_bytes += bytes.size();
  }
  void append_remote(remote_reply r) {
    if (r->size() <= copy_max) {
      text += *r;
      return;
    }
    const std::string_view bytes = *r;
    append(bytes, make_object_deleter(std::move(r)));
  }
  // Everything to `out`, then a flush; the queue is empty after.
  future<> write_to(output_stream<char>& out, connection_stats& stats) {
    stats.bytes_written += bytes();
    for (auto& p : pieces) co_await out.write(std::move(p));
    pieces.clear();
    piece_bytes = 0;
    // The text goes as it is, not copied: the buffer owns the string (a
    // sink may hold it past the put, as the native stack's TCP does for
    // retransmission), and `text` starts a new one of the same size.
    if (!text.empty()) {
      auto sent = std::make_unique<std::string>(std::move(text));
      const std::size_t n = sent->size();
      char* bytes = sent->data();
      text = std::string();
      text.reserve(n);
      co_await out.write(temporary_buffer<char>(bytes, n, make_object_deleter(std::move(sent))));
    }
    co_await out.flush();
  }
};

struct memcached_server::connection {
  connection(connected_socket s, connection_stats& stats)
      : socket(std::move(s)), in(socket.input()), out(socket.output()) {
    replies.sink = &out;
    replies.stats = &stats;
  }

  connected_socket socket;
  input_stream<char> in;
  output_stream<char> out;
  std::string input;     // read, from `pos` on not yet used
  std::size_t pos = 0;
  std::string line;      // the request line being served (its views point here)
  request req;
  reply_queue replies;
  timer<lowres_clock> idle;
  bool reading = false;  // waiting for the next bytes (stop() may end it)
  std::list<connection*>::iterator self;

  std::string_view unread() const noexcept { return {input.data() + pos, input.size() - pos}; }
  // Drops what was used, then appends `b`.
  void take(const temporary_buffer<char>& b) {
    if (pos == input.size()) {
      input.clear();
    } else if (pos > 0) {
      input.erase(0, pos);
    }
    pos = 0;
    input.append(b.get(), b.size());
  }
};

memcached_server::memcached_server(server_config config)
    : _config(std::move(config)),
      _cache(cache_config{.memory_bytes = _config.memory_bytes_per_shard, .item_size_max = _config.item_size_max}) {
  tick();
  _clock.set_callback([this] { tick(); });
  _clock.arm_periodic(std::chrono::seconds(1));
  register_metrics();
}

memcached_server::~memcached_server() = default;

void memcached_server::register_metrics() {
  // The cache's counters are read through stats() (the region's are
  // summed at that moment); the connections' are plain fields.
  auto cache_stat = [this](auto field) {
    return [this, field] { return static_cast<double>(_cache.stats().*field); };
  };
  auto region_stat = [this](auto field) {
    return [this, field] { return static_cast<double>(_cache.stats().region.*field); };
  };
  std::vector<metrics::metric_definition> defs = {
      metrics::make_counter("get_hits_total", "Retrievals that found their key.", cache_stat(&cache_stats::get_hits)),
      metrics::make_counter("get_misses_total", "Retrievals that did not.", cache_stat(&cache_stats::get_misses)),
      metrics::make_gauge("items", "Items held.", cache_stat(&cache_stats::curr_items)),
      metrics::make_gauge("item_bytes", "Bytes of the keys and values held.", cache_stat(&cache_stats::bytes)),
      metrics::make_gauge("limit_bytes", "The shard's share of -m.", cache_stat(&cache_stats::limit_maxbytes)),
      metrics::make_counter("evictions_total", "Live items evicted to make room.",
                            cache_stat(&cache_stats::evictions)),
      metrics::make_counter("reclaimed_total", "Expired or flushed items freed.", cache_stat(&cache_stats::reclaimed)),
      metrics::make_gauge("connections_open", "Connections being served.", _connection_stats.curr_connections),
      metrics::make_counter("connections_total", "Connections accepted.", _connection_stats.total_connections),
      metrics::make_counter("connections_rejected_total", "Connections refused past -c.",
                            _connection_stats.rejected_connections),
      metrics::make_counter("bytes_read_total", "Bytes read from clients.", _connection_stats.bytes_read),
      metrics::make_counter("bytes_written_total", "Bytes written to clients.", _connection_stats.bytes_written),
      metrics::make_counter("udp_datagrams_total", "Datagrams received.", _connection_stats.udp_datagrams),
      metrics::make_gauge("lsa_segments", "Segments the shard's item region holds.",
                          region_stat(&memory::lsa::region_stats::segments)),
      metrics::make_counter("lsa_compactions_total", "Segments the region compacted.",
                            region_stat(&memory::lsa::region_stats::compactions)),
      metrics::make_counter("lsa_objects_moved_total", "Items moved by compaction.",
                            region_stat(&memory::lsa::region_stats::objects_moved)),
  };
  for (auto [command, field] : {std::pair{"get", &cache_stats::cmd_get}, std::pair{"set", &cache_stats::cmd_set},
                                std::pair{"flush", &cache_stats::cmd_flush}, std::pair{"touch", &cache_stats::cmd_touch},
                                std::pair{"meta", &cache_stats::cmd_meta}}) {
    defs.push_back(metrics::make_counter("commands_total",
                                         "Commands run, as memcached's stats count them (cmd_get counts keys).",
                                         cache_stat(field),
                                         {{"command", command}}));
  }
  _metrics.add_group("memcached", std::move(defs));
}

void memcached_server::tick() noexcept {
  // The wall clock read once a second; between, the reactor's clock
  // (read once per loop) carries it on.
  _wall_base_ms = unix_ms_now();
  _lowres_base = lowres_clock::now();
  _cache.set_clock(_wall_base_ms);
  _cache.sweep(sweep_slots_per_tick);
}

std::uint64_t memcached_server::clock_ms() const noexcept {
  const auto since = lowres_clock::now() - _lowres_base;
  return _wall_base_ms + static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(since).count());
}

future<> memcached_server::listen(socket_address address) {
  if (_stopping) return make_exception_future<>(std::logic_error("memcached_server::listen after stop()"));
  try {
    _listeners.push_back(reef::listen(address, listen_options{}));
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
  server_socket& listener = _listeners.back();
  _gate.enter();
  (void)accept_loop(listener).finally([this] { _gate.leave(); });
  return make_ready_future<>();
}

future<> memcached_server::listen_udp(socket_address address) {
  if (_stopping) return make_exception_future<>(std::logic_error("memcached_server::listen_udp after stop()"));
  try {
    _udp = make_udp_channel(address);
    _udp_address = _udp.local_address();
  } catch (...) {
    return make_exception_future<>(std::current_exception());
  }
  _gate.enter();
  (void)udp_loop().finally([this] { _gate.leave(); });
  return make_ready_future<>();
}

std::vector<socket_address> memcached_server::listening_addresses() const {
  std::vector<socket_address> out;
  for (const auto& l : _listeners) out.push_back(l.local_address());
  return out;
}

socket_address memcached_server::udp_address() const { return _udp_address; }

future<> memcached_server::stop() {
  if (_stopping) co_return;
  _stopping = true;
  _clock.cancel();
  for (auto& l : _listeners) l.abort_accept();
  if (_udp) _udp.close();
  for (connection* c : _connection_list) {
    c->socket.shutdown_input();
    c->socket.shutdown_output();
  }
  co_await _gate.close();
  for (auto& l : _listeners) co_await l.close();
  _listeners.clear();
}

future<> memcached_server::accept_loop(server_socket& listener) {
  for (;;) {
    accept_result accepted;
    bool back_off = false;
    try {
      accepted = co_await listener.accept();
    } catch (const std::system_error& e) {
      if (_stopping) co_return;
      const int err = e.code().value();
      if (err == ECONNABORTED || err == EINTR) continue;
      memcached_log.warn("accept failed: {}; retrying", e.what());
      back_off = true;
    }
    if (back_off) {
      co_await sleep(std::chrono::milliseconds(10));
      continue;
    }
    if (!_gate.try_enter()) co_return;
    if (_connections_open >= _config.connections_max_per_shard) {
      ++_connection_stats.rejected_connections;
      (void)refuse(std::move(accepted.connection)).finally([this] { _gate.leave(); });
      continue;
    }
    ++_connection_stats.total_connections;
    (void)serve(std::move(accepted.connection)).finally([this] { _gate.leave(); });
  }
}

future<> memcached_server::refuse(connected_socket socket) {
  output_stream<char> out = socket.output();
  try {
    co_await out.write("ERROR Too many open connections\r\n");
    co_await out.flush();
  } catch (...) {
  }
  try {
    co_await out.close();
  } catch (...) {
  }
}

future<> memcached_server::serve(connected_socket socket) {
  connection c(std::move(socket), _connection_stats);
  _connection_list.push_front(&c);
  c.self = _connection_list.begin();
  ++_connections_open;
  ++_connection_stats.curr_connections;
  struct listed {
    memcached_server& server;
    connection& c;
    ~listed() {
      server._connection_list.erase(c.self);
      --server._connections_open;
      --server._connection_stats.curr_connections;
    }
  } listed_while_served{*this, c};
  if (_config.idle_timeout.count() > 0) {
    c.idle.set_callback([&c] { c.socket.shutdown_input(); });
  }
  try {
    c.socket.set_nodelay(true);
  } catch (...) {
  }
  // Reads until `c` holds `n` unread bytes; false at end of stream.
  auto fill = [this, &c](std::size_t n) -> future<bool> {
    while (c.input.size() - c.pos < n) {
      temporary_buffer<char> b = co_await c.in.read();
      if (b.empty()) co_return false;
      _connection_stats.bytes_read += b.size();
      c.take(b);
    }
    co_return true;
  };
  // Skips `n` bytes of what comes (a data block not stored).
  auto swallow = [&c](std::size_t n) -> future<> {
    const std::size_t have = std::min(n, c.input.size() - c.pos);
    c.pos += have;
    if (have < n) co_await c.in.skip(n - have);
  };
  bool open = true;
  try {
    while (open) {
      // Every complete request that has arrived.
      while (open) {
        const frame f = find_request_line(c.unread());
        if (f.state == frame::status::need_more) break;
        if (f.state == frame::status::too_long) {
          open = false;  // as memcached: a line that never ends closes the connection
          break;
        }
        c.line.assign(f.line);
        c.pos += f.line_bytes;
        request& req = c.req;
        parse_request_line(c.line, req);
        if (!req.error.empty()) {
          c.replies.text += req.error;
          c.replies.text += "\r\n";
          if (req.then == after_error::close) open = false;
          if (req.then == after_error::swallow) co_await swallow(req.bytes + 2);
          continue;
        }
        if (req.kind == command::quit) {
          open = false;
          break;
        }
        if (!req.has_data) {
          co_await run(req, {}, c.replies);
        } else if (!_cache.fits(req.key().size(), req.bytes)) {
          // Too large to store: skipped, and answered (on the key's shard,
          // which drops the key's old value as memcached does).
          co_await swallow(req.bytes + 2);
          co_await run(req, {}, c.replies);
        } else {
          if (!co_await fill(req.bytes + 2)) {
            open = false;
            break;
          }
          const std::string_view block(c.input.data() + c.pos, req.bytes + 2);
          c.pos += req.bytes + 2;
          if (!data_block_ends_well(block)) {
            c.replies.text += "CLIENT_ERROR bad data chunk\r\n";
            continue;
          }
          co_await run(req, block.substr(0, req.bytes), c.replies);
        }
        if (c.replies.bytes() >= reply_bytes_max) co_await c.replies.write_to(c.out, _connection_stats);
      }
      if (!c.replies.empty()) co_await c.replies.write_to(c.out, _connection_stats);
      if (!open) break;
      if (_config.idle_timeout.count() > 0) c.idle.arm(_config.idle_timeout);
      c.reading = true;
      temporary_buffer<char> b = co_await c.in.read();
      c.reading = false;
      c.idle.cancel();
      if (b.empty()) break;
      _connection_stats.bytes_read += b.size();
      c.take(b);
    }
    if (!c.replies.empty()) co_await c.replies.write_to(c.out, _connection_stats);
  } catch (const std::exception& e) {
    memcached_log.debug("connection ends: {}", e.what());
  }
  try {
    co_await c.out.close();
  } catch (...) {
  }
}

future<> memcached_server::run(const request& req, std::string_view data, reply_queue& out) {
  _cache.set_clock(clock_ms());
  switch (req.kind) {
    case command::get:
    case command::gets:
    case command::gat:
    case command::gats:
      return run_retrieval(req, out);
    case command::flush_all: {
      const std::int64_t delay = req.exptime;
      const bool noreply = req.noreply;
      return _peers
          ->invoke_on_all([delay](memcached_server& s) {
            s._cache.set_clock(s.clock_ms());
            s._cache.flush_all(delay);
          })
          .then([&out, noreply] {
            if (!noreply) out.text += "OK\r\n";
          });
    }
    case command::stats:
      return run_stats(req, out);
    case command::version:
      out.text += "VERSION ";
      out.text += version_text;
      out.text += "\r\n";
      return make_ready_future<>();
    case command::verbosity:
      _config.verbosity = req.flags;
      if (!req.noreply) out.text += "OK\r\n";
      return make_ready_future<>();
    case command::meta_noop:
      out.text += "MN\r\n";
      return make_ready_future<>();
    default:
      return run_keyed(req, data, out);
  }
}

future<> memcached_server::run_keyed(const request& req, std::string_view data, reply_queue& out) {
  // One hash per request: it picks the shard, then the index slot.
  const std::uint64_t hash = key_hash(req.key());
  const unsigned shard = shard_of(hash, smp::count);
  if (shard == this_shard_id()) {
    _cache.execute(req, hash, data, out.text);
    return make_ready_future<>();
  }
  // The request and its data stay where they are (this connection waits);
  // the key's shard reads them and sends its reply back.
  return _peers
      ->invoke_on(shard,
                  [&req, hash, data](memcached_server& s) {
                    s._cache.set_clock(s.clock_ms());
                    auto reply = std::make_unique<std::string>();
                    s._cache.execute(req, hash, data, *reply);
                    return make_foreign(std::move(reply));
                  })
      .then([&out](remote_reply r) { out.append_remote(std::move(r)); });
}

future<> memcached_server::run_retrieval(const request& req, reply_queue& out) {
  const std::size_t n = req.keys.size();
  if (n <= retrieval_batch_keys) {
    std::uint64_t hashes[retrieval_batch_keys];
    const unsigned here = this_shard_id();
    bool all_here = true;
    for (std::size_t i = 0; i < n; ++i) {
      hashes[i] = key_hash(req.keys[i]);
      all_here = all_here && shard_of(hashes[i], smp::count) == here;
    }
    if (all_here) {
      // The keys' index slots, then their items, are loaded together
      // before any is read.
      if (n > 1) {
        for (std::size_t i = 0; i < n; ++i) _cache.prefetch_slot(hashes[i]);
        for (std::size_t i = 0; i < n; ++i) _cache.prefetch_item(hashes[i]);
      }
      for (std::size_t i = 0; i < n; ++i) _cache.retrieve(req, req.keys[i], hashes[i], out.text);
      out.text += "END\r\n";
      return make_ready_future<>();
    }
  }
  return retrieve_in_batches(req, out);
}

future<> memcached_server::retrieve_in_batches(const request& req, reply_queue& out) {
  const unsigned here = this_shard_id();
  std::vector<unsigned> shard_of_key(retrieval_batch_keys);
  std::vector<std::uint64_t> hash_of_key(retrieval_batch_keys);
  std::vector<std::size_t> next_of_shard(smp::count);
  std::vector<future<remote_replies>> asked;
  std::vector<lw_shared_ptr<remote_replies>> answers(smp::count);
  std::vector<unsigned> asked_shards;
  // Nothing may throw between sending a shard its part and awaiting the
  // answer (it reads `req`): room for every shard up front.
  asked.reserve(smp::count);
  asked_shards.reserve(smp::count);
  for (std::size_t start = 0; start < req.keys.size(); start += retrieval_batch_keys) {
    const std::size_t end = std::min(req.keys.size(), start + retrieval_batch_keys);
    // Every other shard with keys in this batch is asked at once, for all
    // of its keys, in order.
    asked.clear();
    asked_shards.clear();
    // Every key's hash and shard first (the shards asked read them, as
    // they read `req`, until they answer).
    for (std::size_t i = start; i < end; ++i) {
      hash_of_key[i - start] = key_hash(req.keys[i]);
      shard_of_key[i - start] = shard_of(hash_of_key[i - start], smp::count);
    }
    for (std::size_t i = start; i < end; ++i) {
      const unsigned shard = shard_of_key[i - start];
      if (shard == here || std::find(asked_shards.begin(), asked_shards.end(), shard) != asked_shards.end()) {
        continue;
      }
      asked_shards.push_back(shard);
      asked.push_back(_peers->invoke_on(
          shard, [&req, &hash_of_key, &shard_of_key, start, end, shard](memcached_server& s) {
            s._cache.set_clock(s.clock_ms());
            auto replies = std::make_unique<std::vector<std::string>>();
            for (std::size_t k = start; k < end; ++k) {
              if (shard_of_key[k - start] != shard) continue;
              replies->emplace_back();
              s._cache.retrieve(req, req.keys[k], hash_of_key[k - start], replies->back());
            }
            return make_foreign(std::move(replies));
          }));
    }
    // Every answer is awaited, failed or not: the shards read `req` until
    // they answer.
    std::exception_ptr failed;
    for (std::size_t a = 0; a < asked.size(); ++a) {
      try {
        answers[asked_shards[a]] = make_lw_shared<remote_replies>(co_await std::move(asked[a]));
      } catch (...) {
        failed = std::current_exception();
      }
      next_of_shard[asked_shards[a]] = 0;
    }
    if (failed) std::rethrow_exception(failed);
    // In the order asked: this shard's keys now (the clock read again:
    // this may be well after the request came), the others' from their
    // answers.
    _cache.set_clock(clock_ms());
    for (std::size_t i = start; i < end; ++i) {
      const unsigned shard = shard_of_key[i - start];
      if (shard == here) {
        _cache.retrieve(req, req.keys[i], hash_of_key[i - start], out.text);
        continue;
      }
      const std::string& r = (**answers[shard])[next_of_shard[shard]++];
      out.append(r, make_object_deleter(lw_shared_ptr<remote_replies>(answers[shard])));
    }
    for (unsigned shard : asked_shards) answers[shard] = nullptr;
    if (out.sink != nullptr && out.bytes() >= reply_bytes_max) co_await out.write_to(*out.sink, *out.stats);
  }
  out.text += "END\r\n";
}

future<> memcached_server::run_stats(const request& req, reply_queue& out) {
  struct totals {
    cache_stats cache;
    connection_stats connections;
  };
  const std::string_view what = req.argument;
  if (what == "reset") {
    co_await _peers->invoke_on_all([](memcached_server& s) {
      s._cache.reset_stats();
      s._connection_stats.total_connections = 0;
      s._connection_stats.rejected_connections = 0;
      s._connection_stats.bytes_read = 0;
      s._connection_stats.bytes_written = 0;
    });
    out.text += "RESET\r\n";
    co_return;
  }
  if (!what.empty() && what != "settings" && what != "items" && what != "slabs") {
    out.text += "ERROR\r\n";
    co_return;
  }
  totals t = co_await _peers->map_reduce(
      [](memcached_server& s) { return totals{s._cache.stats(), s._connection_stats}; }, totals{},
      [](totals a, const totals& b) {
        a.cache += b.cache;
        a.connections += b.connections;
        return a;
      });
  std::string& o = out.text;
  const cache_stats& c = t.cache;
  if (what.empty()) {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& tv) {
      char text[40];
      std::snprintf(text, sizeof(text), "%ld.%06ld", static_cast<long>(tv.tv_sec), static_cast<long>(tv.tv_usec));
      return std::string(text);
    };
    append_stat(o, "pid", static_cast<std::uint64_t>(::getpid()));
    append_stat(o, "uptime",
                static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - _started)
                        .count()));
    append_stat(o, "time", _cache.now());
    append_stat(o, "version", version_text);
    append_stat(o, "pointer_size", 64);
    append_stat(o, "rusage_user", seconds(usage.ru_utime));
    append_stat(o, "rusage_system", seconds(usage.ru_stime));
    append_stat(o, "max_connections", _config.connections_max_total);
    append_stat(o, "curr_connections", t.connections.curr_connections);
    append_stat(o, "total_connections", t.connections.total_connections);
    append_stat(o, "rejected_connections", t.connections.rejected_connections);
    append_stat(o, "cmd_get", c.cmd_get);
    append_stat(o, "cmd_set", c.cmd_set);
    append_stat(o, "cmd_flush", c.cmd_flush);
    append_stat(o, "cmd_touch", c.cmd_touch);
    append_stat(o, "cmd_meta", c.cmd_meta);
    append_stat(o, "get_hits", c.get_hits);
    append_stat(o, "get_misses", c.get_misses);
    append_stat(o, "get_expired", c.get_expired);
    append_stat(o, "get_flushed", c.get_flushed);
    append_stat(o, "delete_misses", c.delete_misses);
    append_stat(o, "delete_hits", c.delete_hits);
    append_stat(o, "incr_misses", c.incr_misses);
    append_stat(o, "incr_hits", c.incr_hits);
    append_stat(o, "decr_misses", c.decr_misses);
    append_stat(o, "decr_hits", c.decr_hits);
    append_stat(o, "cas_misses", c.cas_misses);
    append_stat(o, "cas_hits", c.cas_hits);
    append_stat(o, "cas_badval", c.cas_badval);
    append_stat(o, "touch_hits", c.touch_hits);
    append_stat(o, "touch_misses", c.touch_misses);
    append_stat(o, "store_too_large", c.store_too_large);
    append_stat(o, "store_no_memory", c.store_no_memory);
    append_stat(o, "bytes_read", t.connections.bytes_read);
    append_stat(o, "bytes_written", t.connections.bytes_written);
    append_stat(o, "limit_maxbytes", c.limit_maxbytes);
    append_stat(o, "threads", smp::count);
    append_stat(o, "hash_bytes", c.hash_bytes);
    append_stat(o, "bytes", c.bytes);
    append_stat(o, "curr_items", c.curr_items);
    append_stat(o, "total_items", c.total_items);
    append_stat(o, "expired_unfetched", c.expired_unfetched);
    append_stat(o, "evicted_unfetched", c.evicted_unfetched);
    append_stat(o, "evictions", c.evictions);
    append_stat(o, "reclaimed", c.reclaimed);
    append_stat(o, "udp_datagrams", t.connections.udp_datagrams);
    // The log-structured memory the items live in (memory/lsa.h).
    append_stat(o, "lsa_segments", c.region.segments);
    append_stat(o, "lsa_live_bytes", c.region.live_bytes);
    append_stat(o, "lsa_free_bytes", c.region.free_bytes);
    append_stat(o, "lsa_large_bytes", c.region.large_bytes);
    append_stat(o, "lsa_compactions", c.region.compactions);
    append_stat(o, "lsa_objects_moved", c.region.objects_moved);
    append_stat(o, "lsa_segments_released", c.region.segments_released);
  } else if (what == "settings") {
    append_stat(o, "maxbytes", c.limit_maxbytes);
    append_stat(o, "maxconns", _config.connections_max_total);
    append_stat(o, "tcpport", _config.tcp_port);
    append_stat(o, "udpport", _config.udp_port);
    append_stat(o, "inter", _config.listen_text.empty() ? std::string_view("NULL") : _config.listen_text);
    append_stat(o, "verbosity", _config.verbosity);
    append_stat(o, "evictions", "on");
    append_stat(o, "num_threads", smp::count);
    append_stat(o, "cas_enabled", "yes");
    append_stat(o, "item_size_max", _config.item_size_max);
    append_stat(o, "idle_timeout", static_cast<std::uint64_t>(_config.idle_timeout.count()));
    append_stat(o, "flush_enabled", "yes");
    append_stat(o, "slab_reassign", "no");
    append_stat(o, "lsa_segment_bytes", memory::lsa::segment_bytes);
  } else if (what == "items") {
    // One class: every item lives in the same log.
    if (c.curr_items > 0) {
      append_stat(o, "items:1:number", c.curr_items);
      append_stat(o, "items:1:evicted", c.evictions);
      append_stat(o, "items:1:evicted_unfetched", c.evicted_unfetched);
      append_stat(o, "items:1:outofmemory", c.store_no_memory);
      append_stat(o, "items:1:reclaimed", c.reclaimed);
      append_stat(o, "items:1:expired_unfetched", c.expired_unfetched);
    }
  } else {
    // "slabs": the log's segments stand in for slab pages.
    if (c.region.segments > 0) {
      append_stat(o, "1:chunk_size", 16);
      append_stat(o, "1:total_pages", c.region.segments);
      append_stat(o, "1:used_chunks", c.curr_items);
      append_stat(o, "1:get_hits", c.get_hits);
      append_stat(o, "1:cmd_set", c.cmd_set);
      append_stat(o, "1:delete_hits", c.delete_hits);
    }
    append_stat(o, "active_slabs", c.region.segments > 0 ? 1 : 0);
    append_stat(o, "total_malloced", c.region.segments * memory::lsa::segment_bytes + c.region.large_bytes);
  }
  o += "END\r\n";
}

future<> memcached_server::udp_loop() {
  for (;;) {
    udp_datagram d;
    bool failed = false;
    try {
      d = co_await _udp.receive();
    } catch (const std::exception& e) {
      if (_stopping) co_return;
      memcached_log.warn("UDP receive failed: {}; retrying", e.what());
      failed = true;
    }
    if (failed) {
      co_await sleep(std::chrono::milliseconds(10));
      continue;
    }
    ++_connection_stats.udp_datagrams;
    _connection_stats.bytes_read += d.data.size();
    const socket_address source = d.source;
    try {
      co_await serve_datagram(std::move(d));
    } catch (const std::exception& e) {
      memcached_log.debug("UDP request from {} failed: {}", source, e.what());
    }
  }
}

future<> memcached_server::serve_datagram(udp_datagram d) {
  const std::string_view bytes(d.data.get(), d.data.size());
  if (bytes.size() < udp_header_bytes) co_return;  // not memcached's: dropped
  const char* header = bytes.data();
  reply_queue out;
  if (header[4] != 0 || header[5] != 1) {
    out.text = "SERVER_ERROR multi-packet request not supported\r\n";
  } else {
    std::string_view rest = bytes.substr(udp_header_bytes);
    request req;
    std::string line;
    for (;;) {
      const frame f = find_request_line(rest);
      if (f.state != frame::status::line) break;
      line.assign(f.line);
      rest.remove_prefix(f.line_bytes);
      parse_request_line(line, req);
      if (!req.error.empty()) {
        out.text += req.error;
        out.text += "\r\n";
        if (req.then == after_error::close) break;
        if (req.then == after_error::swallow) rest.remove_prefix(std::min(rest.size(), req.bytes + 2));
        continue;
      }
      if (req.kind == command::quit) break;
      if (req.has_data) {
        if (rest.size() < req.bytes + 2) break;  // the rest never comes
        const std::string_view block = rest.substr(0, req.bytes + 2);
        rest.remove_prefix(req.bytes + 2);
        if (!_cache.fits(req.key().size(), req.bytes)) {
          co_await run(req, {}, out);
        } else if (!data_block_ends_well(block)) {
          out.text += "CLIENT_ERROR bad data chunk\r\n";
        } else {
          co_await run(req, block.substr(0, req.bytes), out);
        }
      } else {
        co_await run(req, {}, out);
      }
    }
  }
  if (out.empty()) co_return;
  // One text (the datagrams cut it anywhere), then the datagrams, each
  // with the request's id, its number and the count.
  std::string reply;
  reply.reserve(out.bytes());
  for (auto& p : out.pieces) reply.append(p.get(), p.size());
  reply += out.text;
  constexpr std::size_t payload_max = udp_datagram_max - udp_header_bytes;
  const std::size_t count = (reply.size() + payload_max - 1) / payload_max;
  if (count > 0xffff) co_return;  // (a reply of 90 MB: not for UDP)
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t from = i * payload_max;
    const std::size_t n = std::min(payload_max, reply.size() - from);
    temporary_buffer<char> datagram(udp_header_bytes + n);
    char* h = datagram.get_write();
    h[0] = header[0];
    h[1] = header[1];
    h[2] = static_cast<char>(i >> 8);
    h[3] = static_cast<char>(i & 0xff);
    h[4] = static_cast<char>(count >> 8);
    h[5] = static_cast<char>(count & 0xff);
    h[6] = 0;
    h[7] = 0;
    std::memcpy(h + udp_header_bytes, reply.data() + from, n);
    _connection_stats.bytes_written += datagram.size();
    co_await _udp.send(d.source, packet(std::move(datagram)));
  }
}

}  // namespace reef::memcached
