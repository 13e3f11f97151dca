#include "core/thread.h"

#include <cxxabi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>

#include "core/assert.h"
#include "core/sanitizers.h"

#if defined(REEF_ASAN)
#include <sanitizer/common_interface_defs.h>
#define REEF_ASAN_FIBERS 1
#endif
#if defined(REEF_TSAN)
#include <sanitizer/tsan_interface.h>
#define REEF_TSAN_FIBERS 1
#endif

#if !defined(__x86_64__)
#error "reef::thread switches stacks with x86-64 assembly; port reef_switch_context first"
#endif

// Switches stacks: saves the callee-saved registers on the current stack,
// stores the stack pointer in *save_sp, loads new_sp and restores the
// registers saved there. What the System V ABI asks a call to preserve, and
// no more: no signal mask, no system call (unlike swapcontext).
//   void reef_switch_context(void** save_sp, void* new_sp);
// A new stack starts in reef_context_entry with the context in r12; its CFI
// marks it as the outermost frame, so unwinders and backtraces stop there.
asm(R"(
  .text
  .globl reef_switch_context
  .type reef_switch_context, @function
  .p2align 4
reef_switch_context:
  .cfi_startproc
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  pushq %r12
  .cfi_adjust_cfa_offset 8
  pushq %r13
  .cfi_adjust_cfa_offset 8
  pushq %r14
  .cfi_adjust_cfa_offset 8
  pushq %r15
  .cfi_adjust_cfa_offset 8
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  .cfi_adjust_cfa_offset -48
  ret
  .cfi_endproc
  .size reef_switch_context, .-reef_switch_context

  .globl reef_context_entry
  .type reef_context_entry, @function
  .p2align 4
reef_context_entry:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  xorl %ebp, %ebp
  call reef_thread_main
  ud2
  .cfi_endproc
  .size reef_context_entry, .-reef_context_entry
)");

extern "C" {
void reef_switch_context(void** save_sp, void* new_sp);
void reef_context_entry();
// Never returns; not declared [[noreturn]] so that AddressSanitizer does not
// run its no-return hook before the switch to this stack is finished.
void reef_thread_main(void* context);
}

namespace reef {
namespace core_internal {

namespace {
thread_local thread_context* running_thread = nullptr;

// The C++ runtime's per-OS-thread exception state (__cxa_eh_globals in
// the Itanium C++ ABI, the same layout in libstdc++ and libc++abi): the
// stack of exceptions being handled and the count of those thrown and not
// yet caught. Every reef::thread shares its OS thread with the reactor and
// the other reef::threads, so each keeps its own copy, swapped in and out
// with its stack; otherwise a thread suspended inside a catch block would
// resume with another's exception on top (`throw;` would rethrow that one).
struct exception_state {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

// Exchanges the OS thread's exception state with `saved`.
void swap_exception_state(exception_state& saved) noexcept {
  auto* live = reinterpret_cast<exception_state*>(abi::__cxa_get_globals());
  std::swap(*live, saved);
}
}  // namespace

// States: created (scheduled, not yet run), running (on its stack), waiting
// (suspended in get() or yield()), done (function returned; stack unused).
class thread_context final : public task, public blocking_context {
 public:
  thread_context(thread_attributes attributes, noncopyable_function<void()> func)
      : _func(std::move(func)) {
    if (attributes.stack_size > thread_attributes::stack_size_max) {
      throw std::invalid_argument("reef::thread: stack_size above thread_attributes::stack_size_max");
    }
    long page = ::sysconf(_SC_PAGESIZE);
    std::size_t size = (attributes.stack_size + page - 1) / page * page;
    if (size == 0) size = page;
    _mapping_size = size + page;
    void* m = ::mmap(nullptr, _mapping_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap (thread stack)");
    _mapping = static_cast<char*>(m);
    // The guard page: an overflow faults here.
    if (::mprotect(_mapping, page, PROT_NONE) != 0) {
      int err = errno;
      ::munmap(_mapping, _mapping_size);
      throw std::system_error(err, std::system_category(), "mprotect (thread stack guard)");
    }
    _stack_bottom = _mapping + page;
    _stack_size = size;
    prepare_stack();
#if REEF_TSAN_FIBERS
    _tsan_fiber = __tsan_create_fiber(0);
#endif
  }

  ~thread_context() {
    // A created thread is in the run queue: destroying it would leave the
    // queue holding freed memory.
    REEF_ASSERT(_state == state::done, "a reef::thread destroyed before it finished (join() first)");
#if REEF_TSAN_FIBERS
    __tsan_destroy_fiber(_tsan_fiber);
#endif
    ::munmap(_mapping, _mapping_size);
  }

  future<> join() { return _done.get_future(); }

  // task: start or resume the thread.
  void run_and_dispose() noexcept override {
    REEF_ASSERT(_state == state::created || _state == state::waiting);
    _state = state::running;
    switch_in();
    if (_state == state::done) {
      if (_exception) {
        _done.set_exception(std::move(_exception));
      } else {
        _done.set_value();
      }
    }
  }

  // blocking_context
  task* resume_task() noexcept override { return this; }
  void suspend() noexcept override {
    _state = state::waiting;
    switch_out();
  }

  void yield() noexcept {
    schedule(this);
    suspend();
  }

  // Runs the function on the thread's stack; never returns (its last
  // switch_out() is final).
  void main() noexcept {
    finish_switch_in();
    try {
      _func();
    } catch (...) {
      _exception = std::current_exception();
    }
    // The function and what it captured die on the thread, as promised.
    _func = nullptr;
    _state = state::done;
    switch_out();
    // Never resumed. Returning (a bug) lands on reef_context_entry's ud2,
    // a trap; an assertion here would make the compiler see main() as
    // no-return and run AddressSanitizer's no-return hook before the first
    // switch is finished.
  }

 private:
  enum class state : std::uint8_t { created, running, waiting, done };

  void prepare_stack() noexcept {
    // The first switch into the thread pops six registers and returns into
    // reef_context_entry, leaving the stack 16-byte aligned for its call.
    auto top = reinterpret_cast<std::uintptr_t>(_stack_bottom + _stack_size) & ~std::uintptr_t{15};
    auto* frame = reinterpret_cast<void**>(top - 72);
    frame[0] = nullptr;                                            // r15
    frame[1] = nullptr;                                            // r14
    frame[2] = nullptr;                                            // r13
    frame[3] = this;                                               // r12: the context
    frame[4] = nullptr;                                            // rbx
    frame[5] = nullptr;                                            // rbp
    frame[6] = reinterpret_cast<void*>(&reef_context_entry);       // return address
    frame[7] = nullptr;
    frame[8] = nullptr;
    _thread_sp = frame;
  }

  void switch_in() noexcept {
    thread_context* previous_thread = running_thread;
    blocking_context* previous_context = current_blocking_context;
    REEF_ASSERT(previous_thread == nullptr, "a reef::thread started from inside another one");
    running_thread = this;
    current_blocking_context = this;
#if REEF_ASAN_FIBERS
    __sanitizer_start_switch_fiber(&_asan_reactor_fake_stack, _stack_bottom, _stack_size);
#endif
#if REEF_TSAN_FIBERS
    _tsan_reactor_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(_tsan_fiber, 0);
#endif
    swap_exception_state(_exception_state);  // the thread's in, the reactor's kept
    reef_switch_context(&_reactor_sp, _thread_sp);
    swap_exception_state(_exception_state);  // the reactor's back, the thread's kept
#if REEF_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(_asan_reactor_fake_stack, nullptr, nullptr);
#endif
    running_thread = previous_thread;
    current_blocking_context = previous_context;
  }

  void switch_out() noexcept {
#if REEF_ASAN_FIBERS
    // A finished thread's fake stack is released (nullptr save slot).
    __sanitizer_start_switch_fiber(_state == state::done ? nullptr : &_asan_thread_fake_stack,
                                   _asan_reactor_stack_bottom, _asan_reactor_stack_size);
#endif
#if REEF_TSAN_FIBERS
    __tsan_switch_to_fiber(_tsan_reactor_fiber, 0);
#endif
    reef_switch_context(&_thread_sp, _reactor_sp);
    finish_switch_in();
  }

  // Runs on the thread's stack right after a switch into it.
  void finish_switch_in() noexcept {
#if REEF_ASAN_FIBERS
    __sanitizer_finish_switch_fiber(_asan_thread_fake_stack, &_asan_reactor_stack_bottom,
                                    &_asan_reactor_stack_size);
#endif
  }

  noncopyable_function<void()> _func;
  promise<> _done;
  std::exception_ptr _exception;
  // While the thread runs: the reactor's exception state; otherwise the
  // thread's own (see exception_state).
  exception_state _exception_state;
  char* _mapping = nullptr;
  std::size_t _mapping_size = 0;
  char* _stack_bottom = nullptr;
  std::size_t _stack_size = 0;
  void* _thread_sp = nullptr;
  void* _reactor_sp = nullptr;
  state _state = state::created;
#if REEF_ASAN_FIBERS
  void* _asan_reactor_fake_stack = nullptr;
  void* _asan_thread_fake_stack = nullptr;
  const void* _asan_reactor_stack_bottom = nullptr;
  std::size_t _asan_reactor_stack_size = 0;
#endif
#if REEF_TSAN_FIBERS
  void* _tsan_fiber = nullptr;
  void* _tsan_reactor_fiber = nullptr;
#endif

  friend class reef::thread;
};

}  // namespace core_internal

core_internal::thread_context* thread::create(thread_attributes attributes,
                                         noncopyable_function<void()> func) {
  auto* context = new core_internal::thread_context(attributes, std::move(func));
  schedule(context);
  return context;
}

thread& thread::operator=(thread&& o) noexcept {
  if (this != &o) {
    delete _context;
    _context = std::exchange(o._context, nullptr);
  }
  return *this;
}

thread::~thread() { delete _context; }

future<> thread::join() {
  REEF_ASSERT(_context != nullptr, "join() on an empty reef::thread");
  return _context->join();
}

void thread::yield() {
  core_internal::thread_context* self = core_internal::running_thread;
  REEF_ASSERT(self != nullptr, "thread::yield() outside a reef::thread");
  self->yield();
}

bool thread::running_in_thread() noexcept { return core_internal::running_thread != nullptr; }

}  // namespace reef

extern "C" void reef_thread_main(void* context) {
  static_cast<reef::core_internal::thread_context*>(context)->main();
}
