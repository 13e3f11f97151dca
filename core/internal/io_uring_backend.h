// The io_uring I/O backend (see core/io_backend.h). Operations become
// submission entries, handed to the kernel in one io_uring_enter per loop
// iteration, or sooner once submit_batch_max file operations wait (or the
// submission ring fills); completions are reaped from the completion ring
// without a system call. A pending read on an eventfd
// lets other threads and signal handlers wake a sleeping ring.
//
// Multishot receives and reads take their buffers from a pool registered with the
// kernel as a provided-buffer ring (pool_buffers of pool_buffer_size bytes,
// set aside once per reactor): a connection that waits holds no buffer, and
// a buffer goes back to the ring when the last temporary_buffer viewing it
// goes (on this shard). If the backend goes first, the pool's memory stays
// until the last buffer is returned.
// Reactor thread only, except wakeup().
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>

#include "core/io_backend.h"

namespace reef::core_internal {

class io_uring_backend final : public io_backend {
 public:
  /// Submission entries per batch, and completion entries: a multishot
  /// receive posts a completion per arrival, so a shard with thousands of
  /// connections needs room for far more completions than submissions.
  /// Completions beyond the ring are kept by the kernel (IORING_FEAT_NODROP)
  /// and reaped as room is made.
  static constexpr unsigned sq_entries_default = 256;
  static constexpr unsigned cq_entries_default = 8192;
  /// File operations (read, write, readv, writev, fsync, fdatasync)
  /// prepared before the entries are handed over without waiting for the
  /// loop's flush. The kernel starts a batch's disk requests only once it
  /// has prepared the whole batch (one plug, one doorbell): a loop that
  /// resumed 32 readers held the disk idle while it prepared 32 requests.
  /// Batches of 8 keep the disk busy and still share a system call
  /// (4 KiB random reads at depth 32, tools/bench/fs_vs_fio.sh: from
  /// 0.78x to about fio's rate; see the README). Socket operations wait
  /// for the flush: a peer woken for every 8 replies rather than once per
  /// loop did 30% fewer requests (wrk, plain keep-alive).
  static constexpr unsigned submit_batch_max = 8;

  /// Throws std::system_error naming io_uring_queue_init if the kernel
  /// refuses a ring (old kernel, seccomp, RLIMIT_MEMLOCK).
  explicit io_uring_backend(unsigned sq_entries = sq_entries_default,
                            unsigned cq_entries = cq_entries_default);
  ~io_uring_backend() override;

  const char* name() const noexcept override { return "io_uring"; }
  future<long> submit(const io_request& req) noexcept override;
  std::size_t in_flight() const noexcept override { return _in_flight; }
  void flush() noexcept override;
  bool reap() noexcept override;
  void wait(std::optional<timer_ns> deadline, const sigset_t* mask = nullptr) noexcept override;
  void wakeup() noexcept override;
  void cancel(int fd) noexcept override;
  void cancel_all() noexcept override;
  bool supports_multishot() const noexcept override { return _pool != nullptr; }
  bool recv_multishot(int fd, multishot_receiver& r) noexcept override;
  bool read_multishot(int fd, multishot_receiver& r) noexcept override;
  bool supports_read_multishot() const noexcept override { return _pool != nullptr && _read_multishot; }
  std::size_t multishot_buffer_size() const noexcept override { return _pool != nullptr ? pool_buffer_size : 0; }
  unsigned multishot_buffers() const noexcept override { return _pool != nullptr ? pool_buffers : 0; }
  unsigned multishot_buffers_free() const noexcept override;
  bool accept_multishot(int fd, multishot_receiver& r) noexcept override;
  bool cancel_multishot(multishot_receiver& r) noexcept override;

  /// The provided-buffer pool of multishot receives.
  static constexpr unsigned pool_buffers = 512;
  static constexpr unsigned pool_buffer_size = 8192;
  /// Pool buffers in use (held by temporary_buffers), for tests.
  unsigned pool_buffers_out() const noexcept;

  /// How often the rings were full, for tests and metrics.
  struct ring_stats {
    std::uint64_t backlogged = 0;           // submissions that waited for a free entry
    std::uint64_t submit_busy = 0;          // submits the kernel refused (-EBUSY)
    std::uint64_t cq_overflow_flushes = 0;  // reaps that found completions kept aside
  };
  const ring_stats& stats() const noexcept { return _stats; }
  /// Entries prepared and not yet handed to the kernel, for tests.
  unsigned queued() const noexcept { return _queued; }
  /// Submissions waiting for a free entry.
  std::size_t backlog() const noexcept { return _backlog.size(); }

 private:
  struct completion {
    promise<long> result;
  };
  // A submission, described: prepared into an entry at once, or kept in
  // the backlog until one is free.
  struct entry {
    enum class what : std::uint8_t { request, recv_multishot, read_multishot, accept_multishot, cancel_one, cancel_fd };
    what kind;
    int fd;
    std::uint64_t data;  // a multishot tag: the receiver's, or the one to cancel
    io_request req;
    completion* c;
  };
  class buffer_pool;

  // Queues a multishot operation of `kind` on `fd` feeding `r`; false if
  // the pool is missing, the backend is stopping or nothing could be queued.
  bool start_multishot(entry::what kind, int fd, multishot_receiver& r) noexcept;
  bool queue_entry(const entry& e) noexcept;
  void prepare(io_uring_sqe* sqe, const entry& e) noexcept;
  static void prepare_request(io_uring_sqe* sqe, const io_request& req) noexcept;
  void drain_backlog() noexcept;
  void fail_backlog() noexcept;
  void submit_queued() noexcept;
  unsigned reap_completions() noexcept;
  io_uring_sqe* next_sqe() noexcept;
  void arm_wakeup_read() noexcept;
  // Completes one entry of the completion ring (not the wakeup read).
  void complete(const io_uring_cqe& cqe) noexcept;
  // Sets up the provided-buffer pool, or logs nothing and leaves _pool
  // null (multishot unsupported: older kernel, or no memory).
  void set_up_pool() noexcept;

  io_uring _ring{};
  int _wake_fd = -1;
  std::uint64_t _wake_value = 0;
  bool _wake_armed = false;
  bool _closing = false;  // cancel_all() is running
  bool _stopped = false;  // cancel_all() has run: operations are refused
  bool _reaping = false;  // completing what the ring holds
  std::size_t _in_flight = 0;
  unsigned _queued = 0;
  unsigned _file_ops_queued = 0;  // of _queued (see submit_batch_max)
  std::deque<entry> _backlog;
  ring_stats _stats;
  buffer_pool* _pool = nullptr;
  bool _read_multishot = false;  // the kernel has IORING_OP_READ_MULTISHOT, fixed (6.8)
};

}  // namespace reef::core_internal
