#include "core/internal/preemption_timer.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <system_error>

namespace reef::core_internal {

int preemption_timer::signal_number() noexcept { return SIGRTMIN + 2; }

void preemption_timer::on_signal(int, siginfo_t* info, void*) noexcept {
  // The target comes with the signal: no thread-local lookup in a handler.
  auto* t = static_cast<const target*>(info->si_value.sival_ptr);
  if (t == nullptr || info->si_code != SI_TIMER) return;
  t->flag->store(true, std::memory_order_relaxed);
  t->ticks->fetch_add(1, std::memory_order_relaxed);
}

preemption_timer::preemption_timer(std::chrono::nanoseconds quota, std::atomic<bool>* flag)
    : _quota(quota), _target{flag, &_ticks} {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &preemption_timer::on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(signal_number(), &sa, nullptr);
  });
  sigevent ev{};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = signal_number();
  ev.sigev_value.sival_ptr = &_target;
#ifdef sigev_notify_thread_id
  ev.sigev_notify_thread_id = static_cast<pid_t>(::syscall(SYS_gettid));
#else
  ev._sigev_un._tid = static_cast<pid_t>(::syscall(SYS_gettid));
#endif
  if (::timer_create(CLOCK_MONOTONIC, &ev, &_timer) != 0) {
    throw std::system_error(errno, std::system_category(), "timer_create (preemption)");
  }
  // The reactor's thread takes the signal, even if it was created with
  // every signal blocked (smp's shard threads are) ...
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signal_number());
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  // ... except while it waits in the kernel.
  refresh_mask();
}

void preemption_timer::refresh_mask() noexcept {
  pthread_sigmask(SIG_BLOCK, nullptr, &_wait_mask);
  sigaddset(&_wait_mask, signal_number());
}

preemption_timer::~preemption_timer() {
  disarm();
  ::timer_delete(_timer);
}

void preemption_timer::arm() noexcept {
  const timespec period{static_cast<time_t>(_quota.count() / 1'000'000'000),
                        static_cast<long>(_quota.count() % 1'000'000'000)};
  itimerspec spec{period, period};
  _armed = ::timer_settime(_timer, 0, &spec, nullptr) == 0;
}

void preemption_timer::disarm() noexcept {
  if (!_armed) return;
  itimerspec stop{};
  ::timer_settime(_timer, 0, &stop, nullptr);
  _armed = false;
}

}  // namespace reef::core_internal
