// The reactor's I/O backend: how operations on file descriptors reach the
// kernel and how their completions come back as futures.
//
// Two implementations sit behind this interface (core/internal/): io_uring
// (the default: operations are queued as submission entries and submitted in
// one batch per loop iteration) and epoll (the fallback: readiness, then a
// non-blocking call; operations on regular files, which epoll cannot wait
// for, run on the reactor's blocking-call threads). The reactor picks one
// with `--reactor-backend`, falling back to epoll with a logged reason when
// io_uring cannot be set up. Users reach it through `engine().io()`.
//
// Results follow system-call conventions: a future<long> that holds the
// call's result (>= 0) or -errno. Expected outcomes (EAGAIN, ECONNRESET, a
// short read) are values, not exceptions; the network and file layers turn
// them into errors where that is right.
//
// Order: operations complete in no promised order. In particular two reads
// (or two writes) in flight on one stream at once may complete either way
// round on io_uring; keep one operation per direction in flight on a stream,
// as the stream layers do.
//
// Thread rules: everything here is called on the reactor's thread, except
// wakeup(), which any thread (or a signal handler) may call.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "core/future.h"
#include "core/temporary_buffer.h"
#include "core/timer.h"

namespace reef {

/// One operation on a file descriptor, described without running it. The
/// memory it points at (buffers, iovecs, addresses, msghdr) must stay valid
/// until the returned future resolves.
struct io_request {
  enum class op : std::uint8_t {
    read,       // read(fd, buf, len) at offset, or at the file position if offset < 0
    write,      // write(fd, buf, len) likewise
    readv,      // readv(fd, iov, iovcnt) likewise
    writev,     // writev(fd, iov, iovcnt) likewise
    recv,       // recv(fd, buf, len, flags)
    send,       // send(fd, buf, len, flags)
    recvmsg,    // recvmsg(fd, msg, flags)
    sendmsg,    // sendmsg(fd, msg, flags)
    accept,     // accept4(fd, addr, addrlen, flags): the new fd
    connect,    // connect(fd, addr, addrlen): 0
    fsync,      // fsync(fd)
    fdatasync,  // fdatasync(fd)
    poll,       // waits until one of `events` (POLLIN, POLLOUT, ...) is ready: revents
  };

  op kind = op::read;
  int fd = -1;
  void* buf = nullptr;
  const iovec* iov = nullptr;
  std::size_t len = 0;  // bytes for read/write/recv/send, iovcnt for readv/writev
  std::int64_t offset = -1;
  int flags = 0;  // message flags, accept4 flags, or poll events
  sockaddr* addr = nullptr;
  socklen_t* addrlen_out = nullptr;  // accept
  socklen_t addrlen = 0;             // connect
  msghdr* msg = nullptr;

  static io_request read(int fd, void* buf, std::size_t len, std::int64_t offset = -1) noexcept;
  static io_request write(int fd, const void* buf, std::size_t len,
                          std::int64_t offset = -1) noexcept;
  static io_request readv(int fd, const iovec* iov, int iovcnt, std::int64_t offset = -1) noexcept;
  static io_request writev(int fd, const iovec* iov, int iovcnt, std::int64_t offset = -1) noexcept;
  static io_request recv(int fd, void* buf, std::size_t len, int flags = 0) noexcept;
  static io_request send(int fd, const void* buf, std::size_t len, int flags = 0) noexcept;
  static io_request recvmsg(int fd, msghdr* msg, int flags = 0) noexcept;
  static io_request sendmsg(int fd, msghdr* msg, int flags = 0) noexcept;
  static io_request accept(int fd, sockaddr* addr, socklen_t* addrlen,
                           int flags = SOCK_CLOEXEC | SOCK_NONBLOCK) noexcept;
  static io_request connect(int fd, const sockaddr* addr, socklen_t addrlen) noexcept;
  static io_request fsync(int fd) noexcept;
  static io_request fdatasync(int fd) noexcept;
  static io_request poll(int fd, int events) noexcept;

  /// Whether the operation is a plain read/write that targets a position in
  /// a file (offset >= 0) rather than a stream.
  bool positional() const noexcept {
    return (kind == op::read || kind == op::write || kind == op::readv || kind == op::writev) &&
           offset >= 0;
  }
};

/// Receives the results of one multishot operation (io_backend::
/// recv_multishot, read_multishot, accept_multishot): one submission, many
/// completions.
class multishot_receiver {
 public:
  /// One result: for a receive or read, the bytes (`result` is their count, 0 at
  /// end of stream) in a buffer of the backend's pool, returned to the
  /// pool when the last view of it goes; for an accept, the new
  /// descriptor. A negative `result` is -errno. `more` false: the operation
  /// has ended (end of stream, an error, cancel_multishot(), or -ENOBUFS
  /// when the pool ran dry) and this is its last call, which may still
  /// carry a result (the kernel ended it after a read); start it again to
  /// go on.
  virtual void on_result(long result, temporary_buffer<char> data, bool more) noexcept = 0;

 protected:
  ~multishot_receiver() = default;
};

/// The reactor's I/O backend. See the file comment.
class io_backend {
 public:
  virtual ~io_backend() = default;

  /// "io_uring" or "epoll".
  virtual const char* name() const noexcept = 0;

  /// Queues `req`; the future holds the result or -errno. Never throws;
  /// running out of memory to queue it is -ENOMEM. On io_uring the request
  /// reaches the kernel with the loop's next batch.
  virtual future<long> submit(const io_request& req) noexcept = 0;

  /// Waits until one of `events` is ready on `fd`; the future holds the
  /// ready events (or -errno).
  future<long> readiness(int fd, int events) noexcept { return submit(io_request::poll(fd, events)); }

  /// Cancels the operations in flight on `fd` (they complete with
  /// -ECANCELED, or with their result if they finished first). For closing
  /// a descriptor whose operations would otherwise wait forever (a UDP
  /// receive, an accept). Operations on the blocking threads run to the end.
  virtual void cancel(int fd) noexcept = 0;

  /// Whether recv_multishot() and accept_multishot() work here (io_uring
  /// on Linux 6.0 or later, with its buffer pool registered). Where they do
  /// not, use submit().
  virtual bool supports_multishot() const noexcept { return false; }

  /// Starts receiving on the stream socket `fd` until cancelled or an end:
  /// every arrival of bytes is one on_result() with a buffer from the
  /// backend's pool (so no memory is set aside for connections that wait).
  /// `r` must stay alive until its last call (`more` false). Returns false
  /// (and calls nothing) if the operation cannot be queued.
  virtual bool recv_multishot(int /*fd*/, multishot_receiver& /*r*/) noexcept { return false; }

  /// Starts reading `fd`, a descriptor that read() takes in pieces and
  /// poll() watches (a pipe, a TAP queue: one frame a read), until
  /// cancelled or an end: every read that finds bytes is one on_result()
  /// with a buffer of the backend's pool, of at most
  /// multishot_buffer_size() bytes (what does not fit is the descriptor's
  /// to keep or cut: a TAP cuts the frame). No system call per read: the
  /// kernel reads as the bytes come. io_uring where the kernel has the
  /// operation (Linux 6.8 or later: see supports_read_multishot());
  /// elsewhere false, and the caller waits for readiness and reads. As
  /// recv_multishot() otherwise.
  virtual bool read_multishot(int /*fd*/, multishot_receiver& /*r*/) noexcept { return false; }

  /// Whether read_multishot() works here.
  virtual bool supports_read_multishot() const noexcept { return false; }

  /// The pool that multishot operations fill: the size of each buffer,
  /// how many there are, and how many are free (not held by a
  /// temporary_buffer); 0 where there is none. The pool is the shard's,
  /// shared by every multishot operation on it: a user that can copy
  /// instead of holding buffers (a device whose frames may wait in a
  /// stopped stack) copies when few are free.
  virtual std::size_t multishot_buffer_size() const noexcept { return 0; }
  virtual unsigned multishot_buffers() const noexcept { return 0; }
  virtual unsigned multishot_buffers_free() const noexcept { return 0; }

  /// Starts accepting on the listening socket `fd`: every connection is one
  /// on_result() with the new descriptor (non-blocking, close-on-exec),
  /// which the receiver owns. As recv_multishot() otherwise.
  virtual bool accept_multishot(int /*fd*/, multishot_receiver& /*r*/) noexcept { return false; }

  /// Ends the multishot operation that feeds `r`: results already made
  /// still arrive, then a last call with `more` false. Returns false if the
  /// cancellation could not be queued (the submission ring would not take
  /// it); try again later.
  virtual bool cancel_multishot(multishot_receiver& /*r*/) noexcept { return false; }

  /// A promise from the descriptor's owner: `fd` is a socket (or pipe) it
  /// will hand to forget() before closing. The backend may then keep what
  /// it learns about the descriptor across operations: the epoll backend
  /// registers it once, edge-triggered, instead of adding and removing it
  /// around every operation that waits. The POSIX stack does this for its
  /// sockets; descriptors never passed here work as well, with a
  /// registration per wait.
  virtual void keep_registered(int /*fd*/) noexcept {}

  /// `fd` (passed to keep_registered()) is about to be closed and has no
  /// operations in flight; the backend drops what it kept about it.
  virtual void forget(int /*fd*/) noexcept {}

  /// Operations submitted and not yet completed.
  virtual std::size_t in_flight() const noexcept = 0;

  /// Operations accepted since the backend was made: by submit() (those
  /// that completed at once too) and the multishot calls that started one.
  std::uint64_t operations_submitted() const noexcept { return _operations_submitted; }
  /// Of those, the ones that have completed (a multishot operation once,
  /// when it ends).
  std::uint64_t operations_completed() const noexcept { return _operations_submitted - in_flight(); }

  // --- Called by the reactor's loop only. ---

  /// Hands queued submissions to the kernel (one system call for the batch).
  virtual void flush() noexcept = 0;

  /// Completes the operations that have finished, without blocking.
  /// Returns whether there was anything to complete.
  virtual bool reap() noexcept = 0;

  /// Sleeps until an operation completes, wakeup() is called, a signal
  /// arrives or `deadline` (steady-clock nanoseconds) passes; without a
  /// deadline, no timeout. While asleep the thread's signal mask is
  /// `mask` (when given: the reactor blocks its preemption signal there),
  /// set and restored by the waiting system call itself. Completes what
  /// finished, like reap().
  virtual void wait(std::optional<core_internal::timer_ns> deadline, const sigset_t* mask = nullptr) noexcept = 0;

  /// Makes a wait() in progress (or the next one) return. Any thread;
  /// async-signal-safe.
  virtual void wakeup() noexcept = 0;

  /// Cancels every operation in flight (they complete with -ECANCELED) and
  /// waits for them: for shutdown. Operations submitted afterwards complete
  /// at once with -ECANCELED, and multishot ones are refused, so that the
  /// continuations the reactor runs on its way out cannot start new work.
  virtual void cancel_all() noexcept = 0;

 protected:
  // Counted by the backends (operations_submitted()).
  std::uint64_t _operations_submitted = 0;
};

namespace core_internal {

/// What makes an io_uring backend (throws std::system_error if the kernel
/// refuses one).
using io_backend_factory = std::unique_ptr<io_backend> (*)();

/// Makes the io_uring backend available to reactors: its library
/// (//core:io_uring_backend) does this when it is linked in. A program that
/// does not link it (and liburing) has the epoll backend only.
void register_io_uring_backend(io_backend_factory factory) noexcept;

/// The registered factory, or nullptr.
io_backend_factory io_uring_backend_factory() noexcept;

}  // namespace core_internal
}  // namespace reef
