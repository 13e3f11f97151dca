// The io_uring I/O backend (see core/io_backend.h). Operations become
// submission entries, handed to the kernel in one io_uring_enter per loop
// iteration (or when the submission ring fills); completions are reaped from
// the completion ring without a system call. A pending read on an eventfd
// lets other threads and signal handlers wake a sleeping ring.
// Reactor thread only, except wakeup().
#pragma once

#include <liburing.h>

#include <cstdint>

#include "core/io_backend.h"

namespace reef::internal {

class io_uring_backend final : public io_backend {
 public:
  /// Throws std::system_error naming io_uring_queue_init if the kernel
  /// refuses a ring (old kernel, seccomp, RLIMIT_MEMLOCK).
  explicit io_uring_backend(unsigned entries = 256);
  ~io_uring_backend() override;

  const char* name() const noexcept override { return "io_uring"; }
  future<long> submit(const io_request& req) noexcept override;
  std::size_t in_flight() const noexcept override { return _in_flight; }
  void flush() noexcept override;
  bool reap() noexcept override;
  void wait(std::optional<timer_ns> deadline) noexcept override;
  void wakeup() noexcept override;
  void cancel(int fd) noexcept override;
  void cancel_all() noexcept override;

 private:
  struct completion {
    promise<long> result;
  };

  io_uring_sqe* next_sqe() noexcept;
  void arm_wakeup_read() noexcept;

  io_uring _ring{};
  int _wake_fd = -1;
  std::uint64_t _wake_value = 0;
  bool _wake_armed = false;
  bool _closing = false;
  std::size_t _in_flight = 0;
  unsigned _queued = 0;
};

}  // namespace reef::internal
