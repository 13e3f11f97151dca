#include "fs/file_stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "core/coroutine.h"
#include "core/semaphore.h"

namespace reef {

namespace {

std::size_t round_up(std::size_t n, std::size_t alignment) { return (n + alignment - 1) / alignment * alignment; }

class file_source final : public data_source_impl<char> {
 public:
  file_source(file f, std::uint64_t offset, std::uint64_t length, file_input_stream_options options)
      : _file(std::move(f)),
        _buffer_size(round_up(std::max<std::size_t>(options.buffer_size, 1), _file.disk_read_dma_alignment())),
        _read_ahead(options.read_ahead),
        _start(offset),
        _end(length > std::numeric_limits<std::uint64_t>::max() - offset ? std::numeric_limits<std::uint64_t>::max()
                                                                         : offset + length),
        _next(offset / _file.disk_read_dma_alignment() * _file.disk_read_dma_alignment()) {}

  future<temporary_buffer<char>> get() override {
    if (_ended) return make_ready_future<temporary_buffer<char>>();
    issue();
    if (_pending.empty()) return make_ready_future<temporary_buffer<char>>();
    auto [f, expected] = std::move(_pending.front());
    _pending.pop_front();
    // A buffer shorter than its window is the end, even if reads ahead of
    // it found bytes (a file that grew meanwhile): no gap in the stream.
    return std::move(f).then([this, expected = expected](temporary_buffer<char> b) {
      if (b.size() < expected) _ended = true;
      return b;
    });
  }

  future<> close() override {
    // Let the reads ahead finish before the file can go.
    while (!_pending.empty()) {
      auto f = std::move(_pending.front().first);
      _pending.pop_front();
      try {
        (void)co_await std::move(f);
      } catch (...) {
      }
    }
  }

 private:
  void issue() {
    while (_pending.size() <= _read_ahead && _next < _end && !*_eof) {
      // The bytes of this read that fall in the window.
      const std::uint64_t from = std::max(_next, _start), to = std::min(_next + _buffer_size, _end);
      _pending.emplace_back(read_at(_next), static_cast<std::size_t>(to - from));
      _next += _buffer_size;
    }
  }

  // The bytes of [pos, pos + _buffer_size) that lie in [_start, _end).
  future<temporary_buffer<char>> read_at(std::uint64_t pos) {
    temporary_buffer<char> buf;
    try {
      buf = allocate_aligned_buffer(_buffer_size, _file.memory_dma_alignment());
    } catch (...) {
      return make_exception_future<temporary_buffer<char>>(std::current_exception());
    }
    char* data = buf.get_write();
    return _file.dma_read(pos, data, _buffer_size)
        .then([buf = std::move(buf), pos, start = _start, end = _end, eof = _eof,
               size = _buffer_size](std::size_t n) mutable {
          if (n < size) *eof = true;  // no read beyond this one is needed
          const std::uint64_t from = std::max(pos, start);
          const std::uint64_t to = std::min(pos + n, end);
          if (to <= from) return temporary_buffer<char>();
          buf.trim(static_cast<std::size_t>(to - pos));
          buf.trim_front(static_cast<std::size_t>(from - pos));
          return std::move(buf);
        });
  }

  file _file;
  const std::size_t _buffer_size;
  const unsigned _read_ahead;
  const std::uint64_t _start;
  const std::uint64_t _end;
  std::uint64_t _next;  // where the next read starts (aligned)
  // Set by a short read: shared with reads in flight, which may outlive this.
  std::shared_ptr<bool> _eof = std::make_shared<bool>(false);
  // Reads in flight, in order, with the bytes each should give.
  std::deque<std::pair<future<temporary_buffer<char>>, std::size_t>> _pending;
  bool _ended = false;  // a short buffer was handed out
};

class file_sink final : public data_sink_impl<char> {
 public:
  file_sink(file f, file_output_stream_options options)
      : _file(std::move(f)),
        _buffer_size(round_up(std::max<std::size_t>(options.buffer_size, 1), _file.disk_write_dma_alignment())),
        _write_behind(std::max(options.write_behind, 1u)),
        _background(std::make_shared<background>(_write_behind)) {}

  future<> put(temporary_buffer<char> buf) override {
    std::size_t at = 0;
    while (at < buf.size()) {
      if (_stage.empty()) {
        _stage = allocate_aligned_buffer(_buffer_size, _file.memory_dma_alignment());
        _fill = 0;
      }
      std::size_t take = std::min(buf.size() - at, _buffer_size - _fill);
      std::memcpy(_stage.get_write() + _fill, buf.get() + at, take);
      _fill += take;
      at += take;
      if (_fill == _buffer_size) co_await write_full_stage();
    }
  }

  future<> flush() override {
    co_await write_everything();
    co_await _file.flush();
  }

  future<> close() override {
    std::exception_ptr failed;
    try {
      co_await write_everything();
      // Drop the padding of the last block, then make it all durable (the
      // new size included).
      const std::uint64_t size = _pos + _fill;
      if (_padded_end > size) co_await _file.truncate(size);
      co_await _file.flush();
    } catch (...) {
      failed = std::current_exception();
    }
    co_await _file.close();
    if (failed) std::rethrow_exception(failed);
  }

  std::size_t buffer_size() const noexcept override { return _buffer_size; }

 private:
  // What the writes in the background share with the sink (they may
  // outlive a sink destroyed without close()).
  struct background {
    explicit background(unsigned slots) : slots(slots) {}
    semaphore slots;            // one unit per write that may be in flight
    std::exception_ptr error;   // the first failure
  };

  static std::system_error short_write(const std::string& path) {
    return std::system_error(EIO, std::system_category(), "dma_write(\"" + path + "\"): short write");
  }
  std::system_error short_write() const { return short_write(_file.path()); }

  // Hands the full stage to a write in the background (at most
  // _write_behind at once).
  future<> write_full_stage() {
    auto bg = _background;
    co_await bg->slots.wait();
    if (bg->error) {
      bg->slots.signal();
      std::rethrow_exception(bg->error);
    }
    auto stage = std::move(_stage);
    const std::uint64_t pos = _pos;
    _pos += _buffer_size;
    _fill = 0;
    const char* data = stage.get();
    (void)_file.dma_write(pos, data, _buffer_size)
        .then_wrapped([bg, stage = std::move(stage), size = _buffer_size,
                       path = _file.path()](future<std::size_t> f) {
          try {
            if (f.get() != size) throw short_write(path);
          } catch (...) {
            if (!bg->error) bg->error = std::current_exception();
          }
          bg->slots.signal();
        });
  }

  // Writes the partial last block, padded (it is written again, whole,
  // once more bytes fill it), and waits for every write.
  future<> write_everything() {
    if (_fill > 0) {
      const std::size_t padded = round_up(_fill, _file.disk_write_dma_alignment());
      std::memset(_stage.get_write() + _fill, 0, padded - _fill);
      co_await wait_for_writes();
      std::size_t n = co_await _file.dma_write(_pos, _stage.get(), padded);
      if (n != padded) throw short_write();
      _padded_end = std::max(_padded_end, _pos + padded);
    }
    co_await wait_for_writes();
  }

  // Waits for the writes in flight; rethrows the first failure.
  future<> wait_for_writes() {
    auto bg = _background;
    co_await bg->slots.wait(_write_behind);
    bg->slots.signal(_write_behind);
    if (bg->error) std::rethrow_exception(bg->error);
  }

  file _file;
  const std::size_t _buffer_size;
  const unsigned _write_behind;
  std::shared_ptr<background> _background;
  temporary_buffer<char> _stage;  // the block being filled, at _pos
  std::size_t _fill = 0;
  std::uint64_t _pos = 0;
  std::uint64_t _padded_end = 0;  // past the padding written by flush()
};

}  // namespace

input_stream<char> make_file_input_stream(file f, std::uint64_t offset, std::uint64_t length,
                                          file_input_stream_options options) {
  return input_stream<char>(
      data_source<char>(std::make_unique<file_source>(std::move(f), offset, length, options)));
}

input_stream<char> make_file_input_stream(file f, file_input_stream_options options) {
  return make_file_input_stream(std::move(f), 0, std::numeric_limits<std::uint64_t>::max(), options);
}

output_stream<char> make_file_output_stream(file f, file_output_stream_options options) {
  auto sink = std::make_unique<file_sink>(std::move(f), options);
  const std::size_t size = sink->buffer_size();
  return output_stream<char>(data_sink<char>(std::move(sink)), size);
}

}  // namespace reef
