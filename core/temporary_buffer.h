// Bytes with an owner: a temporary_buffer is a view over memory plus a
// deleter that frees (or releases) that memory when the last view sharing
// it goes. Slicing and sharing copy no bytes: a network packet, a file page
// or a string can become a temporary_buffer without a copy, and parts of
// one can travel separately.
//
//   temporary_buffer<char> b = temporary_buffer<char>::copy_of("GET / HTTP/1.1\r\n");
//   auto method = b.share(0, 3);   // "GET", the same memory
//   b.trim_front(4);               // "/ HTTP/1.1\r\n"
//
// Thread rules: a buffer and those sharing its memory belong to one thread
// (shard); the reference count is not atomic. Hand bytes to another shard
// by copying, or wrap the owner in a foreign_ptr.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "core/small_vector.h"

namespace reef {

/// Releases something once the last reference to it is dropped. Shared
/// between the buffers that view the same memory.
class deleter {
 public:
  /// What a deleter owns. Subclasses release it in their destructor.
  class impl {
   public:
    virtual ~impl() = default;

   private:
    friend class deleter;
    unsigned _references = 1;
  };

  deleter() noexcept = default;
  explicit deleter(impl* i) noexcept : _impl(i) {}
  deleter(deleter&& o) noexcept : _impl(std::exchange(o._impl, nullptr)) {}
  deleter& operator=(deleter&& o) noexcept {
    if (this != &o) {
      reset();
      _impl = std::exchange(o._impl, nullptr);
    }
    return *this;
  }
  deleter(const deleter&) = delete;
  deleter& operator=(const deleter&) = delete;
  ~deleter() { reset(); }

  /// Another reference to the same owner.
  deleter share() noexcept {
    if (_impl != nullptr) ++_impl->_references;
    return deleter(_impl);
  }

  /// Whether it owns anything.
  explicit operator bool() const noexcept { return _impl != nullptr; }

 private:
  void reset() noexcept {
    if (_impl != nullptr && --_impl->_references == 0) delete _impl;
    _impl = nullptr;
  }

  impl* _impl = nullptr;
};

/// A deleter is one pointer: moving its bytes moves it (small_vector
/// relocates deleters so).
template <>
struct is_trivially_relocatable<deleter> : std::true_type {};

namespace core_internal {

template <typename F>
class function_deleter final : public deleter::impl {
 public:
  explicit function_deleter(F&& f) : _f(std::move(f)) {}
  ~function_deleter() override { _f(); }

 private:
  F _f;
};

template <typename T>
class object_deleter final : public deleter::impl {
 public:
  explicit object_deleter(T&& object) : _object(std::move(object)) {}

 private:
  T _object;
};

// Bytes that live right behind their deleter, in one allocation (a
// fresh buffer costs one malloc, not two).
class inline_bytes_deleter final : public deleter::impl {
 public:
  /// Throws std::bad_alloc.
  static inline_bytes_deleter* make(std::size_t size) {
    if (size > std::size_t(-1) - sizeof(inline_bytes_deleter)) throw std::bad_alloc();
    return new (::operator new(sizeof(inline_bytes_deleter) + size)) inline_bytes_deleter();
  }
  char* bytes() noexcept { return reinterpret_cast<char*>(this + 1); }
  // (Not the sized delete the destructor would pass sizeof() to: the
  // allocation is larger.)
  static void operator delete(void* p) noexcept { ::operator delete(p); }

 private:
  inline_bytes_deleter() noexcept = default;
};
static_assert(sizeof(inline_bytes_deleter) % alignof(std::max_align_t) == 0,
              "the bytes behind the deleter are aligned as malloc's");

class free_deleter final : public deleter::impl {
 public:
  explicit free_deleter(void* p) noexcept : _p(p) {}
  ~free_deleter() override { std::free(_p); }

 private:
  void* _p;
};

}  // namespace core_internal

/// A deleter that calls `f()` once, when the last reference goes.
template <typename F>
deleter make_deleter(F&& f) {
  return deleter(new core_internal::function_deleter<std::decay_t<F>>(std::forward<F>(f)));
}

/// A deleter that keeps `object` alive until the last reference goes.
template <typename T>
deleter make_object_deleter(T&& object) {
  return deleter(new core_internal::object_deleter<std::decay_t<T>>(std::forward<T>(object)));
}

/// A deleter that free()s `p`.
inline deleter make_free_deleter(void* p) { return deleter(new core_internal::free_deleter(p)); }

template <typename CharType>
class temporary_buffer {
  static_assert(sizeof(CharType) == 1, "temporary_buffer holds bytes");

 public:
  temporary_buffer() noexcept = default;

  /// `size` fresh bytes (uninitialized). Throws std::bad_alloc.
  explicit temporary_buffer(std::size_t size) : _size(size) {
    if (size == 0) return;
    if (size <= inline_bytes_max) {
      auto* owner = core_internal::inline_bytes_deleter::make(size);
      _buffer = reinterpret_cast<CharType*>(owner->bytes());
      _deleter = deleter(owner);
      return;
    }
    void* p = std::malloc(size);
    if (p == nullptr) throw std::bad_alloc();
    _buffer = static_cast<CharType*>(p);
    _deleter = make_free_deleter(p);
  }

  /// A copy of `size` bytes at `src`.
  temporary_buffer(const CharType* src, std::size_t size) : temporary_buffer(size) {
    if (size > 0) std::memcpy(_buffer, src, size);
  }

  /// A view over `size` bytes at `buffer`, released by `d`.
  temporary_buffer(CharType* buffer, std::size_t size, deleter d) noexcept
      : _buffer(buffer), _size(size), _deleter(std::move(d)) {}

  /// A copy of `text`.
  static temporary_buffer copy_of(std::string_view text) {
    return temporary_buffer(reinterpret_cast<const CharType*>(text.data()), text.size());
  }

  temporary_buffer(temporary_buffer&& o) noexcept
      : _buffer(std::exchange(o._buffer, nullptr)),
        _size(std::exchange(o._size, 0)),
        _deleter(std::move(o._deleter)) {}
  temporary_buffer& operator=(temporary_buffer&& o) noexcept {
    if (this != &o) {
      _buffer = std::exchange(o._buffer, nullptr);
      _size = std::exchange(o._size, 0);
      _deleter = std::move(o._deleter);
    }
    return *this;
  }
  temporary_buffer(const temporary_buffer&) = delete;
  temporary_buffer& operator=(const temporary_buffer&) = delete;

  const CharType* get() const noexcept { return _buffer; }
  /// Writable access. REQUIRES: nothing else reads these bytes meanwhile
  /// (the buffer is not shared, or the sharers agree).
  CharType* get_write() noexcept { return _buffer; }
  std::size_t size() const noexcept { return _size; }
  bool empty() const noexcept { return _size == 0; }
  const CharType* begin() const noexcept { return _buffer; }
  const CharType* end() const noexcept { return _buffer + _size; }
  CharType operator[](std::size_t i) const noexcept { return _buffer[i]; }
  explicit operator bool() const noexcept { return _size != 0; }

  /// The bytes as a string_view (for char buffers).
  std::string_view view() const noexcept {
    return std::string_view(reinterpret_cast<const char*>(_buffer), _size);
  }

  /// Another view of all the bytes, sharing the memory.
  temporary_buffer share() { return temporary_buffer(_buffer, _size, _deleter.share()); }

  /// A view of `len` bytes from `pos`, sharing the memory.
  /// REQUIRES: pos + len <= size().
  temporary_buffer share(std::size_t pos, std::size_t len) {
    REEF_ASSERT(pos <= _size && len <= _size - pos, "temporary_buffer::share out of range");
    return temporary_buffer(_buffer + pos, len, _deleter.share());
  }

  /// Drops the first `n` bytes from the view. REQUIRES: n <= size().
  void trim_front(std::size_t n) noexcept {
    REEF_ASSERT(n <= _size, "temporary_buffer::trim_front past the end");
    _buffer += n;
    _size -= n;
  }

  /// Keeps only the first `n` bytes. REQUIRES: n <= size().
  void trim(std::size_t n) noexcept {
    REEF_ASSERT(n <= _size, "temporary_buffer::trim past the end");
    _size = n;
  }

  /// The first `n` bytes, this buffer consumed. REQUIRES: n <= size().
  temporary_buffer prefix(std::size_t n) && noexcept {
    trim(n);
    return std::move(*this);
  }

  /// A copy of the bytes in memory of its own.
  temporary_buffer clone() const { return temporary_buffer(_buffer, _size); }

  /// Gives up the deleter (the caller now owns the memory's release).
  deleter release() noexcept {
    _buffer = nullptr;
    _size = 0;
    return std::move(_deleter);
  }

  friend bool operator==(const temporary_buffer& a, const temporary_buffer& b) noexcept {
    return a._size == b._size && (a._size == 0 || std::memcmp(a._buffer, b._buffer, a._size) == 0);
  }

 private:
  // Up to here the bytes live behind their deleter, in one allocation (of
  // 1 KiB at most). Larger buffers are usually a power of two (4 KiB,
  // 16 KiB reads), which 16 bytes more would push into the allocator's
  // next size class: they take a second, small allocation for the
  // deleter instead.
  static constexpr std::size_t inline_bytes_max = 1024 - sizeof(core_internal::inline_bytes_deleter);

  CharType* _buffer = nullptr;
  std::size_t _size = 0;
  deleter _deleter;
};

}  // namespace reef
