// A double-ended queue in one ring of memory: push at the back, pop at
// the front, no allocation once it has grown to its working size (where
// std::deque allocates and frees a block every few hundred bytes). For
// the queues on hot paths: a socket's received datagrams, a queue's
// items.
//
//   circular_buffer<int> q;
//   q.push_back(1);
//   q.push_back(2);
//   int first = q.front();  // 1
//   q.pop_front();
//
// Growing moves the elements (references to them do not survive a
// push_back). Thread rules: as std::deque.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include "core/assert.h"

namespace reef {

template <typename T>
class circular_buffer {
  static_assert(std::is_nothrow_move_constructible_v<T>, "circular_buffer needs elements that move without throwing");

 public:
  circular_buffer() noexcept = default;
  circular_buffer(circular_buffer&& o) noexcept
      : _data(std::exchange(o._data, nullptr)),
        _capacity(std::exchange(o._capacity, 0)),
        _begin(std::exchange(o._begin, 0)),
        _size(std::exchange(o._size, 0)) {}
  circular_buffer& operator=(circular_buffer&& o) noexcept {
    if (this != &o) {
      clear();
      release();
      _data = std::exchange(o._data, nullptr);
      _capacity = std::exchange(o._capacity, 0);
      _begin = std::exchange(o._begin, 0);
      _size = std::exchange(o._size, 0);
    }
    return *this;
  }
  circular_buffer(const circular_buffer&) = delete;
  circular_buffer& operator=(const circular_buffer&) = delete;
  ~circular_buffer() {
    clear();
    release();
  }

  std::size_t size() const noexcept { return _size; }
  bool empty() const noexcept { return _size == 0; }
  std::size_t capacity() const noexcept { return _capacity; }

  /// The i-th element from the front. REQUIRES: i < size().
  T& operator[](std::size_t i) noexcept { return _data[(_begin + i) & (_capacity - 1)]; }
  const T& operator[](std::size_t i) const noexcept { return _data[(_begin + i) & (_capacity - 1)]; }
  T& front() noexcept { return _data[_begin]; }
  const T& front() const noexcept { return _data[_begin]; }
  T& back() noexcept { return (*this)[_size - 1]; }
  const T& back() const noexcept { return (*this)[_size - 1]; }

  /// Makes room for `n` elements (a power of two at least as large).
  /// Throws std::bad_alloc; the elements are untouched then.
  void reserve(std::size_t n) {
    if (n <= _capacity) return;
    const std::size_t capacity = capacity_for(n);
    move_to(allocate(capacity), capacity);
  }

  template <typename... A>
  T& emplace_back(A&&... a) {
    if (_size == _capacity) [[unlikely]] {
      return grow_and_emplace_back(std::forward<A>(a)...);
    }
    T* made_here = new (slot(_size)) T(std::forward<A>(a)...);  // (if it throws, nothing changed)
    ++_size;
    return *made_here;
  }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void push_back(const T& v) { emplace_back(v); }

  /// Removes the front element. REQUIRES: !empty().
  void pop_front() noexcept {
    REEF_ASSERT(_size > 0, "pop_front() on an empty circular_buffer");
    _data[_begin].~T();
    _begin = (_begin + 1) & (_capacity - 1);
    --_size;
  }

  /// Removes every element (the memory stays).
  void clear() noexcept {
    while (_size > 0) pop_front();
    _begin = 0;
  }

 private:
  // emplace_back() on a full ring, out of line: the common case stays
  // small enough to inline. The new element is made in the new memory
  // before the others move there (`a` may be one of them), and if that
  // throws nothing has changed.
  template <typename... A>
  [[gnu::noinline]] T& grow_and_emplace_back(A&&... a) {
    const std::size_t capacity = capacity_for(_size + 1);
    T* fresh = allocate(capacity);
    T* made;
    try {
      made = new (fresh + _size) T(std::forward<A>(a)...);
    } catch (...) {
      ::operator delete(fresh, std::align_val_t(alignof(T)));
      throw;
    }
    move_to(fresh, capacity);
    ++_size;
    return *made;
  }

  // The smallest power of two (at least 4) that holds `n`. Throws
  // std::bad_alloc past what memory can hold.
  std::size_t capacity_for(std::size_t n) const {
    std::size_t capacity = std::max<std::size_t>(_capacity, 4);
    while (capacity < n) {
      if (capacity > std::size_t(-1) / 2 / sizeof(T)) throw std::bad_alloc();
      capacity *= 2;
    }
    return capacity;
  }
  static T* allocate(std::size_t capacity) {
    return static_cast<T*>(::operator new(capacity * sizeof(T), std::align_val_t(alignof(T))));
  }
  // Moves the elements to the front of `fresh` (nothing throws) and
  // makes it the ring.
  void move_to(T* fresh, std::size_t capacity) noexcept {
    for (std::size_t i = 0; i < _size; ++i) {
      T& old = (*this)[i];
      new (fresh + i) T(std::move(old));
      old.~T();
    }
    release();
    _data = fresh;
    _capacity = capacity;
    _begin = 0;
  }

  T* slot(std::size_t i) noexcept { return _data + ((_begin + i) & (_capacity - 1)); }
  void release() noexcept {
    if (_data != nullptr) ::operator delete(_data, std::align_val_t(alignof(T)));
    _data = nullptr;
    _capacity = 0;
  }

  T* _data = nullptr;
  std::size_t _capacity = 0;  // 0 or a power of two
  std::size_t _begin = 0;
  std::size_t _size = 0;
};

}  // namespace reef
