// The epoll I/O backend (see core/io_backend.h), the fallback when io_uring
// is unavailable or not chosen.
//
// Stream operations (sockets, pipes, eventfds) are tried at once without
// blocking; one that would block waits, in submission order per descriptor,
// until epoll reports the descriptor ready, and is retried then. A
// descriptor passed to keep_registered() is added to epoll once, for input
// and output, edge-triggered, and stays until forget(): an operation that
// blocks costs no epoll_ctl (an edge after its EAGAIN is always reported,
// because the registration predates it), and one known to be drained (its
// last call said EAGAIN, or read less than asked) waits for its next edge
// without trying. Other descriptors are added,
// level-triggered, while something waits on them, and removed after. The
// descriptors must be non-blocking (recv/send add MSG_DONTWAIT themselves).
// Operations epoll cannot wait for (positional reads and writes on files,
// fsync, fdatasync) run on the reactor's blocking-call threads.
// Reactor thread only, except wakeup().
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/internal/blocking_pool.h"
#include "core/io_backend.h"

namespace reef::core_internal {

class epoll_backend final : public io_backend {
 public:
  /// Throws std::system_error naming the call if epoll or its eventfd
  /// cannot be created.
  explicit epoll_backend(blocking_pool& pool);
  ~epoll_backend() override;

  const char* name() const noexcept override { return "epoll"; }
  future<long> submit(const io_request& req) noexcept override;
  std::size_t in_flight() const noexcept override { return _in_flight; }
  void flush() noexcept override {}
  bool reap() noexcept override;
  void wait(std::optional<timer_ns> deadline, const sigset_t* mask = nullptr) noexcept override;
  void wakeup() noexcept override;
  void cancel(int fd) noexcept override;
  void cancel_all() noexcept override;
  void keep_registered(int fd) noexcept override;
  void forget(int fd) noexcept override;

 private:
  struct waiter {
    io_request req;
    promise<long> result;
    std::uint32_t interest;  // EPOLLIN and/or EPOLLOUT
    bool connect_started;    // connect(): waiting for the outcome
    waiter* next = nullptr;
  };
  struct fd_state {
    waiter* head = nullptr;
    waiter* tail = nullptr;
    std::uint32_t registered = 0;  // events epoll watches for this fd
    bool persistent = false;       // keep_registered(): until forget()
    // Kept descriptors only: whether a call may succeed without waiting
    // for the next edge (false after EAGAIN or a short stream read; true
    // again at an edge).
    bool readable = true;
    bool writable = true;
    bool hung_up = false;  // end of stream or error seen: stays readable
  };

  future<long> submit_blocking(const io_request& req) noexcept;
  void enqueue(fd_state& st, waiter* w) noexcept;
  // Completes every waiter of `st` with `rc` (an error: -errno).
  void complete_all(fd_state& st, long rc) noexcept;
  void update_registration(int fd, fd_state& st) noexcept;
  bool process_events(int timeout_ms, const timespec* timeout, const sigset_t* mask) noexcept;
  void on_ready(int fd, std::uint32_t events) noexcept;
  static long attempt(io_request& req) noexcept;
  // Updates what is known of a kept descriptor's readiness after a call.
  static void note_outcome(fd_state& st, const io_request& req, std::uint32_t interest, long rc) noexcept;
  static long finish_connect(int fd) noexcept;

  blocking_pool& _pool;
  int _epoll_fd = -1;
  int _wake_fd = -1;
  std::unordered_map<int, fd_state> _fds;
  bool _stopped = false;  // cancel_all() has run: operations are refused
  bool _have_epoll_pwait2 = true;  // false after ENOSYS (kernels before 5.11)
  std::size_t _waiting = 0;    // ops parked on readiness
  std::size_t _in_flight = 0;  // those plus ops on the pool
};

}  // namespace reef::core_internal
