// Byte streams: input_stream reads from a data_source, output_stream writes
// to a data_sink. Sockets and files plug in by implementing the source and
// sink; protocol code reads and writes the streams.
//
//   input_stream<char> in = connection.input();
//   auto line = co_await in.read_up_to(4096);      // whatever came, <= 4096 bytes
//   auto header = co_await in.read_exactly(16);    // exactly 16, fewer only at EOF
//   output_stream<char> out = connection.output();
//   co_await out.write("HTTP/1.1 200 OK\r\n");     // small writes are batched
//   co_await out.flush();
//
// Buffers travel as temporary_buffers: what a source produces reaches the
// reader without a copy (read_exactly copies only when it must join
// pieces), and output_stream::write(temporary_buffer) hands the buffer to the
// sink as it is.
//
// Thread rules: a stream belongs to one shard. One operation at a time per
// stream: wait for a read (or write, flush) to resolve before the next.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/assert.h"
#include "core/do_with.h"
#include "core/future.h"
#include "core/loop.h"
#include "core/temporary_buffer.h"

namespace reef {

/// Where an input_stream's bytes come from.
template <typename CharType>
class data_source_impl {
 public:
  virtual ~data_source_impl() = default;
  /// The next bytes; an empty buffer at end of stream.
  virtual future<temporary_buffer<CharType>> get() = 0;
  /// Skips `n` bytes; the default reads and drops them. Resolves with what
  /// was read past them (or empty).
  virtual future<temporary_buffer<CharType>> skip(std::uint64_t n);
  virtual future<> close() { return make_ready_future<>(); }
};

template <typename CharType>
class data_source {
 public:
  data_source() noexcept = default;
  explicit data_source(std::unique_ptr<data_source_impl<CharType>> impl) noexcept
      : _impl(std::move(impl)) {}
  future<temporary_buffer<CharType>> get() { return _impl->get(); }
  future<temporary_buffer<CharType>> skip(std::uint64_t n) { return _impl->skip(n); }
  future<> close() { return _impl->close(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_impl); }

 private:
  std::unique_ptr<data_source_impl<CharType>> _impl;
};

/// Where an output_stream's bytes go.
template <typename CharType>
class data_sink_impl {
 public:
  virtual ~data_sink_impl() = default;
  /// Takes `buf` (resolving once the sink may be given more).
  virtual future<> put(temporary_buffer<CharType> buf) = 0;
  /// Takes several buffers at once (a gathered write); the default puts
  /// them one after the other.
  virtual future<> put(std::vector<temporary_buffer<CharType>> bufs);
  /// Pushes what the sink holds further (most sinks hold nothing).
  virtual future<> flush() { return make_ready_future<>(); }
  virtual future<> close() = 0;
  /// The write size the sink prefers.
  virtual std::size_t buffer_size() const noexcept { return 8192; }
};

template <typename CharType>
class data_sink {
 public:
  data_sink() noexcept = default;
  explicit data_sink(std::unique_ptr<data_sink_impl<CharType>> impl) noexcept
      : _impl(std::move(impl)) {}
  future<> put(temporary_buffer<CharType> buf) { return _impl->put(std::move(buf)); }
  future<> put(std::vector<temporary_buffer<CharType>> bufs) { return _impl->put(std::move(bufs)); }
  future<> flush() { return _impl->flush(); }
  future<> close() { return _impl->close(); }
  std::size_t buffer_size() const noexcept { return _impl->buffer_size(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_impl); }

 private:
  std::unique_ptr<data_sink_impl<CharType>> _impl;
};

/// What a consumer given to input_stream::consume() says after each buffer.
struct continue_consuming {};
template <typename CharType>
struct stop_consuming {
  temporary_buffer<CharType> unconsumed;  // given back to the stream
};
struct skip_bytes {
  std::uint64_t n;  // then continue
};
template <typename CharType>
using consumption_result = std::variant<continue_consuming, stop_consuming<CharType>, skip_bytes>;

template <typename CharType>
class input_stream {
 public:
  input_stream() noexcept = default;
  explicit input_stream(data_source<CharType> fd) noexcept : _fd(std::move(fd)) {}
  input_stream(input_stream&&) noexcept = default;
  input_stream& operator=(input_stream&&) noexcept = default;

  /// The next bytes the source has (any amount); empty at end of stream.
  future<temporary_buffer<CharType>> read() {
    if (!_buf.empty()) return make_ready_future<temporary_buffer<CharType>>(std::move(_buf));
    if (_eof) return make_ready_future<temporary_buffer<CharType>>();
    return _fd.get().then([this](temporary_buffer<CharType> b) {
      if (b.empty()) _eof = true;
      return b;
    });
  }

  /// At most `n` bytes (fewer if that is what is there); empty at end of
  /// stream. Never copies.
  future<temporary_buffer<CharType>> read_up_to(std::size_t n) {
    if (_buf.empty()) {
      if (_eof) return make_ready_future<temporary_buffer<CharType>>();
      return _fd.get().then([this, n](temporary_buffer<CharType> b) {
        if (b.empty()) {
          _eof = true;
          return b;
        }
        if (b.size() > n) {
          _buf = b.share(n, b.size() - n);
          b.trim(n);
        }
        return b;
      });
    }
    if (_buf.size() <= n) return make_ready_future<temporary_buffer<CharType>>(std::move(_buf));
    auto front = _buf.share(0, n);
    _buf.trim_front(n);
    return make_ready_future<temporary_buffer<CharType>>(std::move(front));
  }

  /// Exactly `n` bytes, or fewer only if the stream ends first. Copies
  /// only when the bytes arrive in pieces.
  future<temporary_buffer<CharType>> read_exactly(std::size_t n) {
    if (_buf.size() >= n) {
      auto front = _buf.share(0, n);
      _buf.trim_front(n);
      return make_ready_future<temporary_buffer<CharType>>(std::move(front));
    }
    if (_buf.empty() && _eof) return make_ready_future<temporary_buffer<CharType>>();
    // Join pieces into one buffer of n bytes.
    auto joined = std::make_unique<temporary_buffer<CharType>>(n);
    std::size_t have = _buf.size();
    if (have > 0) std::memcpy(joined->get_write(), _buf.get(), have);
    _buf = temporary_buffer<CharType>();
    auto* raw = joined.get();
    return do_with(std::move(joined), have, [this, raw, n](auto&, std::size_t& filled) {
             return repeat([this, raw, n, &filled]() -> future<stop_iteration> {
               if (filled == n || _eof) return make_ready_future<stop_iteration>(stop_iteration::yes);
               return _fd.get().then([this, raw, n, &filled](temporary_buffer<CharType> b) {
                 if (b.empty()) {
                   _eof = true;
                   return stop_iteration::yes;
                 }
                 std::size_t take = std::min(b.size(), n - filled);
                 std::memcpy(raw->get_write() + filled, b.get(), take);
                 filled += take;
                 if (take < b.size()) {
                   b.trim_front(take);
                   _buf = std::move(b);
                 }
                 return filled == n ? stop_iteration::yes : stop_iteration::no;
               });
             }).then([raw, &filled] { return std::move(*raw).prefix(filled); });
           });
  }

  /// Feeds buffers to `consumer(temporary_buffer<CharType>)`, which returns
  /// a future<consumption_result<CharType>>: continue_consuming (the
  /// buffer is used up), stop_consuming{rest} (what it did not use goes
  /// back to the stream), or skip_bytes{n}. At end of stream the consumer
  /// gets an empty buffer, once, and must stop. `consumer` is called on
  /// this shard and kept (moved) until the returned future resolves.
  template <typename Consumer>
  future<> consume(Consumer&& consumer) {
    return repeat([this, c = std::forward<Consumer>(consumer)]() mutable -> future<stop_iteration> {
      return read().then([this, &c](temporary_buffer<CharType> b) {
        bool at_end = b.empty();
        return futurize_invoke(c, std::move(b)).then([this, at_end](consumption_result<CharType> r) {
          if (auto* stop = std::get_if<stop_consuming<CharType>>(&r)) {
            _buf = std::move(stop->unconsumed);
            return make_ready_future<stop_iteration>(stop_iteration::yes);
          }
          if (at_end) return make_ready_future<stop_iteration>(stop_iteration::yes);
          if (auto* skip = std::get_if<skip_bytes>(&r)) {
            return this->skip(skip->n).then([] { return stop_iteration::no; });
          }
          return make_ready_future<stop_iteration>(stop_iteration::no);
        });
      });
    });
  }

  /// Drops the next `n` bytes (fewer if the stream ends first).
  future<> skip(std::uint64_t n) {
    if (n <= _buf.size()) {
      _buf.trim_front(static_cast<std::size_t>(n));
      return make_ready_future<>();
    }
    n -= _buf.size();
    _buf = temporary_buffer<CharType>();
    if (_eof) return make_ready_future<>();
    // What the source read past the skipped bytes comes back to the stream
    // (empty at end of stream, which the next read then finds).
    return _fd.skip(n).then([this](temporary_buffer<CharType> rest) { _buf = std::move(rest); });
  }

  /// Whether the stream has ended (and nothing is left to read).
  bool eof() const noexcept { return _eof && _buf.empty(); }

  future<> close() { return _fd.close(); }

 private:
  data_source<CharType> _fd;
  temporary_buffer<CharType> _buf;  // read from the source, not yet given out
  bool _eof = false;
};

/// How an output_stream behaves beyond its buffer size.
struct output_stream_options {
  /// flush() returns at once and the data goes to the sink from a task
  /// that runs after the tasks queued now, so that many write()+flush()
  /// pairs in one batch of work (replies to pipelined requests, say) leave
  /// in one send. A failure of such a flush fails the next write(),
  /// flush() or close(). close() waits for it. Seastar's batch_flushes.
  bool batch_flushes = false;
};

namespace core_internal {
/// Logs that an output_stream holding unflushed bytes was destroyed.
void report_unflushed_output(std::size_t bytes) noexcept;
}  // namespace core_internal

/// Writes bytes to a data_sink. Small writes are copied into a buffer of
/// `buffer_size` bytes; temporary_buffers are queued as they are (no copy).
/// What is queued goes to the sink once `buffer_size` bytes wait, and on
/// flush(): all of it at once, as one gathered put (one sendmsg on a
/// socket).
///
/// REQUIRES: one operation at a time (wait for write/flush/close to
/// resolve before the next); with batch_flushes, the stream is not moved
/// while a flush runs in the background, and is closed before it is
/// destroyed. Destroying a stream that holds unflushed bytes loses them
/// and logs a warning.
template <typename CharType>
class output_stream {
 public:
  output_stream() noexcept = default;
  /// Writes smaller than `buffer_size` (default: the sink's) are gathered
  /// until that much is there or flush() is called.
  explicit output_stream(data_sink<CharType> fd, std::size_t buffer_size = 0,
                         output_stream_options options = {}) noexcept
      : _fd(std::move(fd)),
        _size(buffer_size != 0 ? buffer_size : _fd.buffer_size()),
        _batch_flushes(options.batch_flushes) {}
  output_stream(output_stream&& o) noexcept
      : _fd(std::move(o._fd)),
        _buf(std::move(o._buf)),
        _end(std::exchange(o._end, 0)),
        _queued(std::move(o._queued)),
        _queued_bytes(std::exchange(o._queued_bytes, 0)),
        _bytes_put(std::exchange(o._bytes_put, 0)),
        _size(o._size),
        _batch_flushes(o._batch_flushes),
        _failure(std::move(o._failure)) {
    REEF_ASSERT(!o._batch_running, "output_stream moved while a batched flush runs");
    o._queued.clear();
  }
  output_stream& operator=(output_stream&& o) noexcept {
    if (this != &o) {
      this->~output_stream();
      new (this) output_stream(std::move(o));
    }
    return *this;
  }
  ~output_stream() {
    REEF_ASSERT(!_batch_running, "output_stream destroyed while a batched flush runs (close() it first)");
    if (_end + _queued_bytes > 0) core_internal::report_unflushed_output(_end + _queued_bytes);
  }

  /// Copies `n` bytes at `data` into the stream; the caller's memory is
  /// not read after this returns.
  future<> write(const CharType* data, std::size_t n) noexcept {
    if (_failure) return take_failure();
    if (n == 0) return make_ready_future<>();
    try {
      if (_end == 0 && n >= _size) {
        // Large with nothing gathered: a buffer of its own.
        return enqueue(temporary_buffer<CharType>(data, n));
      }
      if (_buf.empty()) _buf = temporary_buffer<CharType>(_size);
      std::size_t take = std::min(n, _size - _end);
      std::memcpy(_buf.get_write() + _end, data, take);
      _end += take;
      if (_end < _size) return make_ready_future<>();
      seal();
      // The rest is copied now, before the caller's memory may go.
      const std::size_t rest = n - take;
      if (rest >= _size) {
        push_queued(temporary_buffer<CharType>(data + take, rest));
      } else if (rest > 0) {
        _buf = temporary_buffer<CharType>(_size);
        std::memcpy(_buf.get_write(), data + take, rest);
        _end = rest;
      }
      return put_queued();
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
  }

  future<> write(std::string_view text) noexcept {
    return write(reinterpret_cast<const CharType*>(text.data()), text.size());
  }

  /// Queues `buf` after what is gathered, without copying it.
  future<> write(temporary_buffer<CharType> buf) noexcept {
    if (_failure) return take_failure();
    if (buf.empty()) return make_ready_future<>();
    try {
      return enqueue(std::move(buf));
    } catch (...) {
      return make_exception_future<>(std::current_exception());
    }
  }

  /// Bytes handed to the sink so far (written and no longer gathered or
  /// queued here; the sink may still hold them).
  std::uint64_t bytes_put() const noexcept { return _bytes_put; }

  /// Sends what is gathered and flushes the sink. With batch_flushes,
  /// returns at once (see output_stream_options).
  future<> flush() noexcept {
    if (_failure) return take_failure();
    if (!_batch_flushes) {
      seal();
      return put_queued().then([this] { return _fd.flush(); });
    }
    // Gathering goes on until the batch runs: later small writes join the
    // same buffer.
    if (_end + _queued_bytes == 0) return make_ready_future<>();
    _flush_again = true;
    if (!_batch_running) {
      try {
        schedule(make_task([this] { run_batch_flush(); }));
      } catch (...) {
        _flush_again = false;
        return make_exception_future<>(std::current_exception());
      }
      _batch_running = true;
    }
    return make_ready_future<>();
  }

  /// Flushes (after a batched flush in flight), then closes the sink. A
  /// failure of either is the result; the sink is closed regardless.
  future<> close() noexcept {
    return wait_for_batch()
        .then([this] {
          if (_failure) {
            drop_unsent();  // it cannot go anywhere; the failure says so
            return take_failure();
          }
          seal();
          return put_queued().then([this] { return _fd.flush(); });
        })
        .finally([this] { return _fd.close(); });
  }

 private:
  // The gathered bytes join the queue.
  void seal() noexcept {
    if (_end == 0) return;
    push_queued(std::move(_buf).prefix(_end));
    _buf = temporary_buffer<CharType>();
    _end = 0;
  }

  void push_queued(temporary_buffer<CharType> b) {
    _queued_bytes += b.size();
    _queued.push_back(std::move(b));
  }

  future<> enqueue(temporary_buffer<CharType> b) {
    seal();
    push_queued(std::move(b));
    if (_queued_bytes < _size) return make_ready_future<>();
    return put_queued();
  }

  void drop_unsent() noexcept {
    _queued.clear();
    _queued_bytes = 0;
    _buf = temporary_buffer<CharType>();
    _end = 0;
  }

  // Hands the queue to the sink, after a batched flush in flight (never
  // beside it).
  future<> put_queued() noexcept {
    if (_queued.empty()) return make_ready_future<>();
    if (!_batch_running) return put_queued_now();
    return wait_for_batch().then([this] {
      if (_failure) {
        drop_unsent();
        return take_failure();
      }
      return put_queued_now();
    });
  }

  // Hands the queue to the sink: one buffer as it is, several as one
  // gathered put.
  future<> put_queued_now() noexcept {
    if (_queued.empty()) return make_ready_future<>();
    _bytes_put += _queued_bytes;
    _queued_bytes = 0;
    if (_queued.size() == 1) {
      auto b = std::move(_queued.front());
      _queued.clear();
      return _fd.put(std::move(b));
    }
    return _fd.put(std::exchange(_queued, {}));
  }

  future<> take_failure() noexcept { return make_exception_future<>(std::exchange(_failure, nullptr)); }

  future<> wait_for_batch() noexcept {
    if (!_batch_running) return make_ready_future<>();
    REEF_ASSERT(!_batch_done, "two operations at once on an output_stream");
    _batch_done.emplace();
    return _batch_done->get_future();
  }

  // The background flush of batch_flushes: goes round while flushes were
  // asked for meanwhile.
  void run_batch_flush() noexcept {
    _flush_again = false;
    seal();
    (void)put_queued_now().then([this] { return _fd.flush(); }).then_wrapped([this](future<> f) {
      if (f.failed()) {
        _failure = f.get_exception();
      } else if (_flush_again) {
        run_batch_flush();
        return;
      }
      _batch_running = false;
      if (_batch_done) {
        auto p = std::move(*_batch_done);
        _batch_done.reset();
        p.set_value();
      }
    });
  }

  data_sink<CharType> _fd;
  temporary_buffer<CharType> _buf;  // gathered writes, [0, _end) used
  std::size_t _end = 0;
  std::vector<temporary_buffer<CharType>> _queued;  // in order, for the sink
  std::size_t _queued_bytes = 0;
  std::uint64_t _bytes_put = 0;  // handed to the sink
  std::size_t _size = 8192;
  bool _batch_flushes = false;
  bool _batch_running = false;  // a background flush is scheduled or runs
  bool _flush_again = false;    // flush() was asked since it started
  std::optional<promise<>> _batch_done;  // an operation waits for it
  std::exception_ptr _failure;           // of a background flush, not yet reported
};

template <typename CharType>
future<temporary_buffer<CharType>> data_source_impl<CharType>::skip(std::uint64_t n) {
  return do_with(n, temporary_buffer<CharType>(), [this](std::uint64_t& left, temporary_buffer<CharType>& rest) {
    return repeat([this, &left, &rest] {
             return get().then([&left, &rest](temporary_buffer<CharType> b) {
               if (b.empty()) return stop_iteration::yes;
               if (b.size() > left) {
                 b.trim_front(static_cast<std::size_t>(left));
                 rest = std::move(b);
                 left = 0;
                 return stop_iteration::yes;
               }
               left -= b.size();
               return left == 0 ? stop_iteration::yes : stop_iteration::no;
             });
           })
        .then([&rest] { return std::move(rest); });
  });
}

template <typename CharType>
future<> data_sink_impl<CharType>::put(std::vector<temporary_buffer<CharType>> bufs) {
  return do_with(std::move(bufs), std::size_t(0), [this](auto& all, std::size_t& i) {
    return repeat([this, &all, &i] {
      if (i == all.size()) return make_ready_future<stop_iteration>(stop_iteration::yes);
      return put(std::move(all[i++])).then([] { return stop_iteration::no; });
    });
  });
}

}  // namespace reef
