#include "core/internal/stall_detector.h"

#include <cxxabi.h>
#include <execinfo.h>
#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/internal/helper_threads.h"
#include "core/log.h"

namespace reef::core_internal {

namespace {

logger& stall_logger() {
  static logger* l = new logger("reactor");
  return *l;
}

// The stall detector of the reactor running on this thread: where the backtrace
// signal handler stores what it captures.
thread_local stall_detector* this_thread_detector = nullptr;

// "binary(mangled+0x1f) [0x...]" -> "demangled+0x1f"; otherwise as given.
std::string symbol_of(const char* line) {
  const char* open = std::strchr(line, '(');
  const char* plus = open != nullptr ? std::strchr(open, '+') : nullptr;
  const char* close = plus != nullptr ? std::strchr(plus, ')') : nullptr;
  if (open == nullptr || plus == nullptr || close == nullptr || plus == open + 1) {
    const char* bracket = std::strchr(line, '[');
    return bracket != nullptr ? std::string(bracket + 1, std::strcspn(bracket + 1, "]"))
                              : std::string(line);
  }
  std::string mangled(open + 1, plus);
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : mangled;
  std::free(demangled);
  return name + std::string(plus, close);
}

}  // namespace

int stall_detector::backtrace_signal() noexcept { return SIGRTMIN + 1; }

void stall_detector::on_backtrace_signal(int) noexcept {
  stall_detector* w = this_thread_detector;
  if (w == nullptr) return;
  int saved_errno = errno;
  int n = ::backtrace(w->_frames, frames_max);
  w->_frame_count.store(n, std::memory_order_release);
  errno = saved_errno;
}

stall_detector::stall_detector(std::chrono::nanoseconds stall_threshold, int shard_id)
    : _stall_threshold(stall_threshold), _shard_id(shard_id), _reactor_thread(pthread_self()) {
  pthread_getcpuclockid(_reactor_thread, &_reactor_cpu_clock);
  this_thread_detector = this;
  // backtrace() loads its unwinder on first use, which is not safe inside a
  // signal handler: load it now.
  void* warm[2];
  ::backtrace(warm, 2);
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction sa {};
    sa.sa_handler = &stall_detector::on_backtrace_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(backtrace_signal(), &sa, nullptr);
  });
  // The reactor thread must take the backtrace signal, even if it was
  // created with every signal blocked (smp's shard threads are).
  sigset_t backtrace_only;
  sigemptyset(&backtrace_only);
  sigaddset(&backtrace_only, backtrace_signal());
  pthread_sigmask(SIG_UNBLOCK, &backtrace_only, nullptr);
  // The companion thread takes no signals.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  try {
    _thread = std::thread([this] { run(); });
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    this_thread_detector = nullptr;
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

stall_detector::~stall_detector() {
  _state.store(stopping, std::memory_order_release);
  _state.notify_one();
  _thread.join();
  if (this_thread_detector == this) this_thread_detector = nullptr;
}

std::chrono::nanoseconds stall_detector::check_interval() const noexcept {
  auto interval = _stall_threshold / 4;
  return interval < std::chrono::milliseconds(1) ? std::chrono::milliseconds(1) : interval;
}

void stall_detector::run() noexcept {
  use_process_cpus();
  const auto interval = check_interval();
  const timespec pause{static_cast<time_t>(interval.count() / 1'000'000'000),
                       static_cast<long>(interval.count() % 1'000'000'000)};
  unsigned idle_checks = 0;
  for (;;) {
    std::uint32_t state = _state.load(std::memory_order_acquire);
    if (state == stopping) return;
    if (state != idle) {
      idle_checks = 0;
    } else if (++idle_checks > park_after_checks) {
      // Announce the park before the last look, so that on_busy() either
      // sees it and wakes us, or we see busy and do not wait.
      _parked.store(true, std::memory_order_seq_cst);
      if (_state.load(std::memory_order_seq_cst) == idle) _state.wait(idle, std::memory_order_acquire);
      _parked.store(false, std::memory_order_relaxed);
      idle_checks = 0;
      continue;
    }
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    if (_state.load(std::memory_order_relaxed) != busy) continue;
    check_stall();
  }
}

std::chrono::nanoseconds stall_detector::reactor_cpu_time() const noexcept {
  timespec ts{};
  if (clock_gettime(_reactor_cpu_clock, &ts) != 0) return std::chrono::nanoseconds::max();
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

void stall_detector::check_stall() noexcept {
  auto now = std::chrono::steady_clock::now();
  std::uint64_t iterations = _iterations.load(std::memory_order_relaxed);
  // (The first look starts the watch: before it, the reactor thread's
  // time went to setting up, not to an iteration.)
  if (iterations != _seen_iterations || _seen_since == std::chrono::steady_clock::time_point{}) {
    _seen_iterations = iterations;
    _seen_since = now;
    _seen_cpu = reactor_cpu_time();
    _reported = false;
    return;
  }
  if (_reported || now - _seen_since < _stall_threshold) return;
  // Blame the reactor only for time it actually ran.
  if (reactor_cpu_time() - _seen_cpu < _stall_threshold) return;
  _reported = true;
  report_stall(now - _seen_since);
}

void stall_detector::report_stall(std::chrono::nanoseconds stalled) noexcept {
  _frame_count.store(-1, std::memory_order_relaxed);
  std::string trace = "(no backtrace: the reactor did not take the signal in time)";
  if (pthread_kill(_reactor_thread, backtrace_signal()) == 0) {
    // The handler runs as soon as the reactor thread is scheduled.
    for (int i = 0; i < 100 && _frame_count.load(std::memory_order_acquire) < 0; ++i) {
      const timespec ms{0, 1'000'000};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, nullptr);
    }
  }
  int n = _frame_count.load(std::memory_order_acquire);
  if (n > 0) {
    trace.clear();
    char** symbols = ::backtrace_symbols(_frames, n);
    // Frame 0 is the handler, frame 1 the kernel's signal trampoline.
    for (int i = 2; i < n; ++i) {
      if (!trace.empty()) trace += " | ";
      trace += symbols != nullptr ? symbol_of(symbols[i]) : format("{}", _frames[i]);
    }
    std::free(symbols);
  }
  _stalls_reported.fetch_add(1, std::memory_order_relaxed);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(stalled).count();
  try {
    stall_logger().warn("reactor stalled for {} ms on shard {}, backtrace: {}", ms, _shard_id,
                        trace);
  } catch (...) {
  }
}

}  // namespace reef::core_internal
