// A pipe: a bounded channel of items from one writer to one reader on the
// same shard, with end of stream and back-pressure.
//
//   pipe<int> p(16);
//   auto reader = std::move(p.reader);   // read() -> future<std::optional<int>>
//   auto writer = std::move(p.writer);   // write(v) -> future<>
//
// When the buffer holds `size` items, write() waits until the reader takes
// one. Destroying the writer is end of stream: read() returns nullopt after
// the buffered items. Destroying the reader fails pending and later writes
// with broken_pipe_exception.
//
// Thread rules: one thread (shard); one pending read() and one pending
// write() at a time.
#pragma once

#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/future.h"

namespace reef {

/// What writes fail with once the reader is gone.
class broken_pipe_exception : public std::exception {
 public:
  const char* what() const noexcept override { return "broken pipe"; }
};

namespace core_internal {

template <typename T>
struct pipe_buffer {
  explicit pipe_buffer(std::size_t size) : size(size) {}
  std::deque<T> items;
  std::size_t size;
  bool writer_gone = false;
  bool reader_gone = false;
  std::optional<promise<>> readable;  // the reader waits for an item or the end
  std::optional<promise<>> writable;  // the writer waits for room

  static void notify(std::optional<promise<>>& slot) noexcept {
    if (slot) std::exchange(slot, std::nullopt)->set_value();
  }
};

}  // namespace core_internal

template <typename T>
class pipe_reader {
 public:
  pipe_reader(pipe_reader&&) noexcept = default;
  pipe_reader& operator=(pipe_reader&& o) noexcept {
    if (this != &o) {
      close();
      _buffer = std::move(o._buffer);
    }
    return *this;
  }
  ~pipe_reader() { close(); }

  /// The next item, or nullopt once the writer is gone and the buffer empty.
  future<std::optional<T>> read() noexcept { return read_from(_buffer); }

 private:
  template <typename U>
  friend class pipe;
  explicit pipe_reader(std::shared_ptr<core_internal::pipe_buffer<T>> b) noexcept
      : _buffer(std::move(b)) {}

  static future<std::optional<T>> read_from(std::shared_ptr<core_internal::pipe_buffer<T>> b) noexcept {
    REEF_ASSERT(b != nullptr, "read() on a moved-from pipe_reader");
    if (!b->items.empty()) {
      std::optional<T> item(std::move(b->items.front()));
      b->items.pop_front();
      core_internal::pipe_buffer<T>::notify(b->writable);
      return make_ready_future<std::optional<T>>(std::move(item));
    }
    if (b->writer_gone) return make_ready_future<std::optional<T>>(std::nullopt);
    REEF_ASSERT(!b->readable, "a second read() before the first resolved");
    b->readable.emplace();
    return b->readable->get_future().then([b]() mutable { return read_from(std::move(b)); });
  }

  void close() noexcept {
    if (!_buffer) return;
    _buffer->reader_gone = true;
    _buffer->items.clear();
    core_internal::pipe_buffer<T>::notify(_buffer->writable);
    _buffer.reset();
  }

  std::shared_ptr<core_internal::pipe_buffer<T>> _buffer;
};

template <typename T>
class pipe_writer {
 public:
  pipe_writer(pipe_writer&&) noexcept = default;
  pipe_writer& operator=(pipe_writer&& o) noexcept {
    if (this != &o) {
      close();
      _buffer = std::move(o._buffer);
    }
    return *this;
  }
  ~pipe_writer() { close(); }

  /// Queues `item`, at once if there is room, else once the reader makes
  /// some. Fails with broken_pipe_exception once the reader is gone.
  future<> write(T&& item) noexcept { return write_to(_buffer, std::move(item)); }

 private:
  template <typename U>
  friend class pipe;
  explicit pipe_writer(std::shared_ptr<core_internal::pipe_buffer<T>> b) noexcept
      : _buffer(std::move(b)) {}

  static future<> write_to(std::shared_ptr<core_internal::pipe_buffer<T>> b, T&& item) noexcept {
    REEF_ASSERT(b != nullptr, "write() on a moved-from pipe_writer");
    if (b->reader_gone) return make_exception_future<>(broken_pipe_exception());
    if (b->items.size() < b->size) {
      try {
        b->items.push_back(std::move(item));
      } catch (...) {
        return make_exception_future<>(std::current_exception());
      }
      core_internal::pipe_buffer<T>::notify(b->readable);
      return make_ready_future<>();
    }
    REEF_ASSERT(!b->writable, "a second write() before the first resolved");
    b->writable.emplace();
    return b->writable->get_future().then([b, item = std::move(item)]() mutable {
      return write_to(std::move(b), std::move(item));
    });
  }

  void close() noexcept {
    if (!_buffer) return;
    _buffer->writer_gone = true;
    core_internal::pipe_buffer<T>::notify(_buffer->readable);
    _buffer.reset();
  }

  std::shared_ptr<core_internal::pipe_buffer<T>> _buffer;
};

/// Both ends of a new pipe holding up to `size` (>= 1) items.
template <typename T>
class pipe {
 public:
  explicit pipe(std::size_t size) : pipe(std::make_shared<core_internal::pipe_buffer<T>>(size)) {
    REEF_ASSERT(size >= 1, "a pipe holds at least one item");
  }
  pipe_reader<T> reader;
  pipe_writer<T> writer;

 private:
  explicit pipe(std::shared_ptr<core_internal::pipe_buffer<T>> b) : reader(b), writer(b) {}
};

}  // namespace reef
