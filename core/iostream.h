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

template <typename CharType>
class output_stream {
 public:
  output_stream() noexcept = default;
  /// Writes smaller than `buffer_size` (default: the sink's) are gathered
  /// until that much is there or flush() is called.
  explicit output_stream(data_sink<CharType> fd, std::size_t buffer_size = 0) noexcept
      : _fd(std::move(fd)), _size(buffer_size != 0 ? buffer_size : _fd.buffer_size()) {}
  output_stream(output_stream&&) noexcept = default;
  output_stream& operator=(output_stream&&) noexcept = default;

  /// Copies `n` bytes at `data` into the stream.
  future<> write(const CharType* data, std::size_t n) {
    if (_buf.empty() && n >= _size) {
      // Large and nothing gathered: one buffer of its own, straight on.
      return _fd.put(temporary_buffer<CharType>(data, n));
    }
    if (_buf.empty()) {
      try {
        _buf = temporary_buffer<CharType>(_size);
      } catch (...) {
        return make_exception_future<>(std::current_exception());
      }
      _end = 0;
    }
    std::size_t take = std::min(n, _size - _end);
    std::memcpy(_buf.get_write() + _end, data, take);
    _end += take;
    if (_end < _size) return make_ready_future<>();
    // Full: hand it over, then the rest.
    return put_buffer().then([this, data, n, take] { return write(data + take, n - take); });
  }

  future<> write(std::string_view text) {
    return write(reinterpret_cast<const CharType*>(text.data()), text.size());
  }

  /// Hands `buf` to the sink without copying it (after what is gathered).
  future<> write(temporary_buffer<CharType> buf) {
    if (buf.empty()) return make_ready_future<>();
    if (_buf.empty()) return _fd.put(std::move(buf));
    return put_buffer().then([this, b = std::move(buf)]() mutable { return _fd.put(std::move(b)); });
  }

  /// Sends what is gathered and flushes the sink.
  future<> flush() {
    if (_buf.empty()) return _fd.flush();
    return put_buffer().then([this] { return _fd.flush(); });
  }

  /// Flushes, then closes the sink.
  future<> close() {
    return flush().finally([this] { return _fd.close(); });
  }

 private:
  future<> put_buffer() {
    auto b = std::move(_buf).prefix(_end);
    _end = 0;
    return _fd.put(std::move(b));
  }

  data_sink<CharType> _fd;
  temporary_buffer<CharType> _buf;  // gathered writes, [0, _end) used
  std::size_t _end = 0;
  std::size_t _size = 8192;
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
