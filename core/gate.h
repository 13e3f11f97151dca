// A gate tracks work in progress so that shutdown can wait for it:
// requests enter() the gate and leave() when done; close() stops new entries
// and resolves when the last holder has left.
//
//   gate g;
//   future<> handle(request r) { return with_gate(g, [r] { return process(r); }); }
//   future<> stop() { return g.close(); }
//
// Thread rules: one thread (shard).
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/assert.h"
#include "core/do_with.h"
#include "core/future.h"

namespace reef {

/// What entering a closed gate throws (or fails with, in with_gate).
class gate_closed_exception : public std::exception {
 public:
  const char* what() const noexcept override { return "gate closed"; }
};

class gate {
 public:
  /// One registration with the gate, left when this object is destroyed.
  class holder {
   public:
    holder() noexcept = default;
    explicit holder(gate& g) : _gate(&g) { g.enter(); }
    holder(holder&& o) noexcept : _gate(std::exchange(o._gate, nullptr)) {}
    holder& operator=(holder&& o) noexcept {
      if (this != &o) {
        release();
        _gate = std::exchange(o._gate, nullptr);
      }
      return *this;
    }
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    ~holder() { release(); }
    /// Leaves the gate now.
    void release() noexcept {
      if (_gate != nullptr) std::exchange(_gate, nullptr)->leave();
    }

   private:
    gate* _gate = nullptr;
  };

  gate() noexcept = default;
  gate(const gate&) = delete;
  gate& operator=(const gate&) = delete;
  /// REQUIRES: nobody holds the gate (close() and wait first).
  ~gate() { REEF_ASSERT(_count == 0, "gate destroyed while held"); }

  /// Registers one holder. Throws gate_closed_exception once closed.
  void enter() {
    if (_closed) throw gate_closed_exception();
    ++_count;
  }
  /// enter(), without the exception.
  bool try_enter() noexcept {
    if (_closed) return false;
    ++_count;
    return true;
  }
  /// Unregisters one holder. REQUIRES: a matching enter().
  void leave() noexcept {
    REEF_ASSERT(_count > 0, "gate::leave() without enter()");
    if (--_count == 0 && _closed) _drained.set_value();
  }
  /// Throws gate_closed_exception if the gate is closed: for long work to
  /// check whether it should stop.
  void check() const {
    if (_closed) throw gate_closed_exception();
  }
  /// enter() as an object that leaves when destroyed.
  holder hold() { return holder(*this); }

  /// Closes the gate; resolves when no holder is left.
  /// REQUIRES: not closed yet.
  future<> close() noexcept {
    REEF_ASSERT(!_closed, "gate closed twice");
    _closed = true;
    if (_count == 0) _drained.set_value();
    return _drained.get_future();
  }

  std::size_t get_count() const noexcept { return _count; }
  bool is_closed() const noexcept { return _closed; }

 private:
  std::size_t _count = 0;
  bool _closed = false;
  promise<> _drained;
};

/// Runs `func()` inside the gate: fails with gate_closed_exception if it is
/// closed, and leaves when func's future resolves. `func` is moved to the
/// heap, runs on this thread, and is destroyed when its future resolves (so
/// a coroutine lambda may use its captures throughout).
template <typename Func>
futurize_t<std::invoke_result_t<Func&>> with_gate(gate& g, Func&& func) noexcept {
  using result = futurize_t<std::invoke_result_t<Func&>>;
  if (!g.try_enter()) {
    return futurize<result>::from_exception(std::make_exception_ptr(gate_closed_exception()));
  }
  return do_with(std::forward<Func>(func), [&g](std::decay_t<Func>& f) {
    return futurize_invoke(f).finally([&g] { g.leave(); });
  });
}

}  // namespace reef
