// Cancellation: an abort_source is the switch, subscribers are told once
// when it is flipped. Long operations subscribe (to stop a timer, close a
// socket) or check() at their steps.
//
// Thread rules: one thread (shard). Callbacks run inside request_abort(), in
// subscription order, on this thread; a callback may drop its own
// subscription but must not destroy the abort_source.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include "core/function.h"

namespace reef {

/// What check() throws, and what abortable operations fail with.
class abort_requested_exception : public std::exception {
 public:
  const char* what() const noexcept override { return "abort requested"; }
};

class abort_source {
 public:
  /// A registered callback; unregisters when destroyed.
  class subscription {
   public:
    subscription() noexcept = default;
    subscription(subscription&& o) noexcept { take(o); }
    subscription& operator=(subscription&& o) noexcept {
      if (this != &o) {
        unlink();
        take(o);
      }
      return *this;
    }
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;
    ~subscription() { unlink(); }

    /// Whether it is still registered (not fired, not moved from).
    explicit operator bool() const noexcept { return _source != nullptr; }

   private:
    friend class abort_source;
    subscription(abort_source& source, noncopyable_function<void()> callback) noexcept
        : _callback(std::move(callback)), _source(&source) {
      _prev = source._tail;
      (_prev != nullptr ? _prev->_next : source._head) = this;
      source._tail = this;
    }
    void take(subscription& o) noexcept {
      _callback = std::move(o._callback);
      _source = std::exchange(o._source, nullptr);
      _prev = std::exchange(o._prev, nullptr);
      _next = std::exchange(o._next, nullptr);
      if (_source == nullptr) return;
      (_prev != nullptr ? _prev->_next : _source->_head) = this;
      (_next != nullptr ? _next->_prev : _source->_tail) = this;
    }
    void unlink() noexcept {
      if (_source == nullptr) return;
      (_prev != nullptr ? _prev->_next : _source->_head) = _next;
      (_next != nullptr ? _next->_prev : _source->_tail) = _prev;
      _source = nullptr;
      _prev = _next = nullptr;
    }

    noncopyable_function<void()> _callback;
    abort_source* _source = nullptr;
    subscription* _prev = nullptr;
    subscription* _next = nullptr;
  };

  abort_source() noexcept = default;
  abort_source(const abort_source&) = delete;
  abort_source& operator=(const abort_source&) = delete;
  /// REQUIRES: no subscription outlives it.
  ~abort_source() {
    while (_head != nullptr) _head->unlink();
  }

  /// Registers `callback`, called once by request_abort(); nullopt (and
  /// `callback` never called) if abort was already requested.
  [[nodiscard]] std::optional<subscription> subscribe(noncopyable_function<void()> callback) noexcept {
    if (_aborted) return std::nullopt;
    return std::optional<subscription>(subscription(*this, std::move(callback)));
  }

  /// Flips the switch: calls every subscriber once, in order. Later calls
  /// do nothing.
  void request_abort() noexcept {
    if (_aborted) return;
    _aborted = true;
    while (_head != nullptr) {
      subscription* s = _head;
      s->unlink();
      auto callback = std::move(s->_callback);
      callback();
    }
  }

  bool abort_requested() const noexcept { return _aborted; }

  /// Throws abort_requested_exception if abort was requested.
  void check() const {
    if (_aborted) throw abort_requested_exception();
  }

 private:
  bool _aborted = false;
  subscription* _head = nullptr;
  subscription* _tail = nullptr;
};

}  // namespace reef
