#include "core/internal/io_uring_backend.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <deque>
#include <system_error>
#include <utility>

#include "core/assert.h"

namespace reef::core_internal {

namespace {

// Linked in (alwayslink), this library offers reactors its backend.
struct registration {
  registration() noexcept {
    register_io_uring_backend([]() -> std::unique_ptr<io_backend> { return std::make_unique<io_uring_backend>(); });
  }
} registered;

// user_data of the eventfd read that wakes the ring; completions are
// pointers, never this value.
constexpr std::uint64_t wakeup_tag = 1;
// user_data of the cancellations that cancel() and cancel_all() submit.
constexpr std::uint64_t cancel_tag = 2;

// The kernel caps one read or write at this many bytes (MAX_RW_COUNT);
// io_uring takes the length as 32 bits, so longer ones are clamped here
// rather than wrapped (a short count, as read(2) would give).
constexpr std::size_t rw_max = 0x7ffff000;

unsigned clamp_length(std::size_t len) noexcept {
  return static_cast<unsigned>(len < rw_max ? len : rw_max);
}

// user_data of multishot operations: the receiver's address with this bit
// set (receivers are pointer-aligned, so the bit is otherwise clear).
constexpr std::uint64_t multishot_bit = 1;

std::uint64_t multishot_tag(multishot_receiver& r) noexcept {
  return reinterpret_cast<std::uintptr_t>(&r) | multishot_bit;
}

// What counts toward submit_batch_max: operations on files (the disk
// waits for the batch), not on sockets.
bool is_file_op(io_request::op kind) noexcept {
  using op = io_request::op;
  return kind == op::read || kind == op::write || kind == op::readv || kind == op::writev || kind == op::fsync ||
         kind == op::fdatasync;
}

// IORING_OP_READ_MULTISHOT (Linux 6.7): the enumerator after
// IORING_OP_SENDMSG_ZC, which liburing 2.3's header does not name yet.
constexpr int read_multishot_op = IORING_OP_SENDMSG_ZC + 1;

// The buffer group id of the pool (one pool per ring).
constexpr unsigned short pool_group = 0;

bool kernel_at_least(int major, int minor) noexcept {
  utsname u{};
  if (::uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}
}  // namespace

// The provided buffers: `memory` cut into pool_buffers buffers, whose ids go
// round the kernel's buffer ring. A buffer handed to a receiver is viewed by
// temporary_buffers through its slot, a deleter that lives in `slots` (no
// allocation per buffer) and puts the id back on the ring when the last
// view goes.
class io_uring_backend::buffer_pool {
 public:
  buffer_pool(io_uring_buf_ring* ring, std::size_t ring_bytes, char* memory) noexcept
      : _ring(ring), _ring_bytes(ring_bytes), _memory(memory) {
    io_uring_buf_ring_init(_ring);
    for (unsigned id = 0; id < pool_buffers; ++id) {
      io_uring_buf_ring_add(_ring, _memory + std::size_t(id) * pool_buffer_size, pool_buffer_size,
                            static_cast<unsigned short>(id), io_uring_buf_ring_mask(pool_buffers),
                            static_cast<int>(id));
    }
    io_uring_buf_ring_advance(_ring, pool_buffers);
  }
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;

  // The kernel filled buffer `id` with `size` bytes.
  temporary_buffer<char> take(unsigned id, std::size_t size) noexcept {
    ++_out;
    auto* s = new (&_slots[id]) slot(this, id);
    return temporary_buffer<char>(_memory + std::size_t(id) * pool_buffer_size, size, deleter(s));
  }

  unsigned out() const noexcept { return _out; }

  // The ring is gone: the kernel no longer reads the buffer ring; the
  // memory stays until the last buffer comes back.
  void orphan() noexcept {
    ::munmap(_ring, _ring_bytes);
    _ring = nullptr;
    if (_out == 0) delete this;
  }

 private:
  class slot final : public deleter::impl {
   public:
    slot(buffer_pool* pool, unsigned id) noexcept : _pool(pool), _id(id) {}
    ~slot() override {
      if (_pool->put_back(_id)) finished_pool = _pool;
    }
    // A slot lives in its pool's array: `delete` frees nothing, except the
    // orphaned pool once its last buffer is back (here, after the slot's
    // destruction is over, since the pool's memory holds the slot).
    static void operator delete(void*) noexcept { delete std::exchange(finished_pool, nullptr); }

   private:
    static thread_local buffer_pool* finished_pool;
    buffer_pool* _pool;
    unsigned _id;
  };

  ~buffer_pool() { std::free(_memory); }

  // Returns whether the pool is orphaned and this was its last buffer.
  bool put_back(unsigned id) noexcept {
    --_out;
    if (_ring == nullptr) return _out == 0;
    io_uring_buf_ring_add(_ring, _memory + std::size_t(id) * pool_buffer_size, pool_buffer_size,
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(pool_buffers), 0);
    io_uring_buf_ring_advance(_ring, 1);
    return false;
  }

  io_uring_buf_ring* _ring;
  std::size_t _ring_bytes;
  char* _memory;
  unsigned _out = 0;
  alignas(slot) unsigned char _slots[pool_buffers][sizeof(slot)];
};

thread_local io_uring_backend::buffer_pool* io_uring_backend::buffer_pool::slot::finished_pool = nullptr;

io_uring_backend::io_uring_backend(unsigned sq_entries, unsigned cq_entries) {
  // Completions are processed by this thread, and only when it asks for
  // them (DEFER_TASKRUN, Linux 6.1; this thread alone submits,
  // SINGLE_ISSUER): the kernel queues their work for the next reap or
  // wait instead of interrupting the thread for each, and the reap finds
  // a batch (pipelined HTTP: 7% more requests for the same CPU). The
  // kernel flags the ring when such work waits, so that a polling loop
  // knows to enter. Older kernels: the work runs at the next entry to the
  // kernel (COOP_TASKRUN, 5.19), or at once.
  // The completion ring is sized for multishot operations, which post many
  // completions per submission (see cq_entries_default).
  int rc = -EINVAL;
  io_uring_params params{};
  for (unsigned flags : {IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_TASKRUN_FLAG,
                         IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, 0u}) {
    params = {};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = cq_entries < sq_entries ? sq_entries : cq_entries;
    rc = io_uring_queue_init_params(sq_entries, &_ring, &params);
    if (rc != -EINVAL) break;
  }
  if (rc < 0) throw std::system_error(-rc, std::system_category(), "io_uring_queue_init");
  // Timed waits need IORING_FEAT_EXT_ARG (5.11), cancel_all() needs
  // IORING_ASYNC_CANCEL_ANY (5.19): refuse older kernels, and the reactor
  // falls back to epoll with this reason.
  if (!(params.features & IORING_FEAT_EXT_ARG) || !kernel_at_least(5, 19)) {
    io_uring_queue_exit(&_ring);
    throw std::system_error(ENOSYS, std::system_category(),
                            "io_uring: this backend needs Linux 5.19 or later");
  }
  _wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (_wake_fd < 0) {
    int err = errno;
    io_uring_queue_exit(&_ring);
    throw std::system_error(err, std::system_category(), "eventfd");
  }
  arm_wakeup_read();
  set_up_pool();
}

io_uring_backend::~io_uring_backend() {
  cancel_all();
  io_uring_queue_exit(&_ring);
  ::close(_wake_fd);
  if (_pool != nullptr) _pool->orphan();
}

void io_uring_backend::set_up_pool() noexcept {
  // Multishot receive with provided buffers: Linux 6.0. Multishot read:
  // the ring says whether it has the operation (6.7), and 6.8 made it
  // read again at once when a read left more behind (a TAP's one frame a
  // read).
  if (!kernel_at_least(6, 0)) return;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&_ring)) {
    _read_multishot = io_uring_opcode_supported(probe, read_multishot_op) && kernel_at_least(6, 8);
    io_uring_free_probe(probe);
  }
  const std::size_t ring_bytes = pool_buffers * sizeof(io_uring_buf);
  void* ring = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring == MAP_FAILED) return;
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring);
  reg.ring_entries = pool_buffers;
  reg.bgid = pool_group;
  void* memory = std::aligned_alloc(4096, std::size_t(pool_buffers) * pool_buffer_size);
  if (memory == nullptr || io_uring_register_buf_ring(&_ring, &reg, 0) != 0) {
    std::free(memory);
    ::munmap(ring, ring_bytes);
    return;
  }
  _pool = new (std::nothrow)
      buffer_pool(static_cast<io_uring_buf_ring*>(ring), ring_bytes, static_cast<char*>(memory));
  if (_pool == nullptr) {
    io_uring_unregister_buf_ring(&_ring, pool_group);
    std::free(memory);
    ::munmap(ring, ring_bytes);
  }
}

unsigned io_uring_backend::pool_buffers_out() const noexcept { return _pool != nullptr ? _pool->out() : 0; }

unsigned io_uring_backend::multishot_buffers_free() const noexcept {
  return _pool != nullptr ? pool_buffers - _pool->out() : 0;
}

bool io_uring_backend::start_multishot(entry::what kind, int fd, multishot_receiver& r) noexcept {
  if (_pool == nullptr || _closing || _stopped) return false;
  entry e{};
  e.kind = kind;
  e.fd = fd;
  e.data = multishot_tag(r);
  if (!queue_entry(e)) return false;
  ++_in_flight;
  ++_operations_submitted;
  return true;
}

bool io_uring_backend::recv_multishot(int fd, multishot_receiver& r) noexcept {
  return start_multishot(entry::what::recv_multishot, fd, r);
}

bool io_uring_backend::read_multishot(int fd, multishot_receiver& r) noexcept {
  return _read_multishot && start_multishot(entry::what::read_multishot, fd, r);
}

bool io_uring_backend::accept_multishot(int fd, multishot_receiver& r) noexcept {
  return start_multishot(entry::what::accept_multishot, fd, r);
}

bool io_uring_backend::cancel_multishot(multishot_receiver& r) noexcept {
  // cancel_all() ends every operation already; a receiver asking from its
  // last results must not submit while that drains the ring.
  if (_closing) return true;
  entry e{};
  e.kind = entry::what::cancel_one;
  e.data = multishot_tag(r);
  return queue_entry(e);
}

bool io_uring_backend::queue_entry(const entry& e) noexcept {
  if (_backlog.empty()) {
    if (io_uring_sqe* sqe = next_sqe()) {
      prepare(sqe, e);
      if (e.kind == entry::what::request && is_file_op(e.req.kind) && ++_file_ops_queued >= submit_batch_max) {
        submit_queued();  // (see submit_batch_max)
      }
      return true;
    }
  }
  // No submission entry free even after a submit (the kernel refused the
  // batch: its completion ring overflowed): wait in order for the next
  // flush() rather than fail.
  try {
    _backlog.push_back(e);
  } catch (const std::bad_alloc&) {
    return false;
  }
  ++_stats.backlogged;
  return true;
}

void io_uring_backend::prepare(io_uring_sqe* sqe, const entry& e) noexcept {
  switch (e.kind) {
    case entry::what::request:
      prepare_request(sqe, e.req);
      io_uring_sqe_set_data(sqe, e.c);
      return;
    case entry::what::recv_multishot:
      io_uring_prep_recv_multishot(sqe, e.fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = pool_group;
      io_uring_sqe_set_data64(sqe, e.data);
      return;
    case entry::what::read_multishot:
      // (liburing 2.3 predates the operation: prepared by hand.) Offset
      // -1: the file position, which pipes and TAPs do not have.
      io_uring_prep_rw(read_multishot_op, sqe, e.fd, nullptr, 0, static_cast<__u64>(-1));
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = pool_group;
      io_uring_sqe_set_data64(sqe, e.data);
      return;
    case entry::what::accept_multishot:
      // No address: one buffer would be overwritten by every connection
      // before its completion is read; the receiver asks the socket
      // (getpeername).
      io_uring_prep_multishot_accept(sqe, e.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      io_uring_sqe_set_data64(sqe, e.data);
      return;
    case entry::what::cancel_one:
      io_uring_prep_cancel64(sqe, e.data, 0);
      io_uring_sqe_set_data64(sqe, cancel_tag);
      return;
    case entry::what::cancel_fd:
      io_uring_prep_cancel_fd(sqe, e.fd, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(sqe, cancel_tag);
      return;
  }
}

void io_uring_backend::drain_backlog() noexcept {
  while (!_backlog.empty()) {
    io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
    if (sqe == nullptr) return;
    ++_queued;
    prepare(sqe, _backlog.front());
    _backlog.pop_front();
  }
}

void io_uring_backend::fail_backlog() noexcept {
  while (!_backlog.empty()) {
    entry e = _backlog.front();
    _backlog.pop_front();
    switch (e.kind) {
      case entry::what::request:
        --_in_flight;
        e.c->result.set_value(-ECANCELED);
        delete e.c;
        break;
      case entry::what::recv_multishot:
      case entry::what::read_multishot:
      case entry::what::accept_multishot:
        --_in_flight;
        reinterpret_cast<multishot_receiver*>(e.data & ~multishot_bit)
            ->on_result(-ECANCELED, temporary_buffer<char>(), false);
        break;
      case entry::what::cancel_one:
      case entry::what::cancel_fd:
        break;
    }
  }
}

void io_uring_backend::complete(const io_uring_cqe& cqe) noexcept {
  if (cqe.user_data == cancel_tag) return;
  if (cqe.user_data & multishot_bit) {
    auto* r = reinterpret_cast<multishot_receiver*>(cqe.user_data & ~multishot_bit);
    const bool more = cqe.flags & IORING_CQE_F_MORE;
    temporary_buffer<char> data;
    if (cqe.flags & IORING_CQE_F_BUFFER) {
      data = _pool->take(cqe.flags >> IORING_CQE_BUFFER_SHIFT,
                         cqe.res > 0 ? static_cast<std::size_t>(cqe.res) : 0);
    }
    if (!more) --_in_flight;
    r->on_result(static_cast<long>(cqe.res), std::move(data), more);  // may end `r`
    return;
  }
  auto* c = static_cast<completion*>(io_uring_cqe_get_data(&cqe));
  --_in_flight;
  c->result.set_value(static_cast<long>(cqe.res));
  delete c;
}

io_uring_sqe* io_uring_backend::next_sqe() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&_ring);
  if (sqe == nullptr) {
    // The submission ring is full: hand the batch over now.
    submit_queued();
    sqe = io_uring_get_sqe(&_ring);
  }
  if (sqe != nullptr) ++_queued;
  return sqe;
}

void io_uring_backend::arm_wakeup_read() noexcept {
  io_uring_sqe* sqe = next_sqe();
  if (sqe == nullptr) return;  // retried at the next wait()
  io_uring_prep_read(sqe, _wake_fd, &_wake_value, sizeof(_wake_value), 0);
  io_uring_sqe_set_data64(sqe, wakeup_tag);
  _wake_armed = true;
}

future<long> io_uring_backend::submit(const io_request& req) noexcept {
  // cancel_all() waits for what is in flight, and ends the backend's
  // service: nothing new may join.
  if (_closing || _stopped) return make_ready_future<long>(-ECANCELED);
  completion* c;
  try {
    c = new completion;
  } catch (const std::bad_alloc&) {
    return make_ready_future<long>(-ENOMEM);
  }
  entry e{};
  e.kind = entry::what::request;
  e.req = req;
  e.c = c;
  if (!queue_entry(e)) {
    delete c;
    return make_ready_future<long>(-ENOMEM);
  }
  ++_in_flight;
  ++_operations_submitted;
  return c->result.get_future();
}

void io_uring_backend::prepare_request(io_uring_sqe* sqe, const io_request& req) noexcept {
  using op = io_request::op;
  // -1 selects the file position for streams; io_uring takes it as u64.
  const auto offset = static_cast<__u64>(req.offset < 0 ? -1 : req.offset);
  switch (req.kind) {
    case op::read:
      io_uring_prep_read(sqe, req.fd, req.buf, clamp_length(req.len), offset);
      break;
    case op::write:
      io_uring_prep_write(sqe, req.fd, req.buf, clamp_length(req.len), offset);
      break;
    case op::readv:
      io_uring_prep_readv(sqe, req.fd, req.iov, static_cast<unsigned>(req.len), offset);
      break;
    case op::writev:
      io_uring_prep_writev(sqe, req.fd, req.iov, static_cast<unsigned>(req.len), offset);
      break;
    case op::recv:
      io_uring_prep_recv(sqe, req.fd, req.buf, clamp_length(req.len), req.flags);
      break;
    case op::send:
      io_uring_prep_send(sqe, req.fd, req.buf, clamp_length(req.len), req.flags);
      break;
    case op::recvmsg:
      io_uring_prep_recvmsg(sqe, req.fd, req.msg, static_cast<unsigned>(req.flags));
      break;
    case op::sendmsg:
      io_uring_prep_sendmsg(sqe, req.fd, req.msg, static_cast<unsigned>(req.flags));
      break;
    case op::accept:
      io_uring_prep_accept(sqe, req.fd, req.addr, req.addrlen_out, req.flags);
      break;
    case op::connect:
      io_uring_prep_connect(sqe, req.fd, req.addr, req.addrlen);
      break;
    case op::fsync:
      io_uring_prep_fsync(sqe, req.fd, 0);
      break;
    case op::fdatasync:
      io_uring_prep_fsync(sqe, req.fd, IORING_FSYNC_DATASYNC);
      break;
    case op::poll:
      io_uring_prep_poll_add(sqe, req.fd, static_cast<unsigned>(req.flags));
      break;
  }
}

void io_uring_backend::flush() noexcept {
  drain_backlog();
  if (_queued == 0) return;
  submit_queued();
  // Entries freed by that submission take what still waits.
  if (!_backlog.empty()) {
    drain_backlog();
    submit_queued();
  }
}

void io_uring_backend::submit_queued() noexcept {
  if (_queued == 0) {
    _file_ops_queued = 0;
    return;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    int rc;
    do {
      rc = io_uring_submit(&_ring);
    } while (rc == -EINTR);
    REEF_ASSERT(rc != -EEXIST, "an io_uring submitted from a thread other than its reactor's");
    if (rc >= 0) {
      _queued = io_uring_sq_ready(&_ring);
      // Some may stay (the kernel took part): at most that many are
      // file operations.
      _file_ops_queued = std::min(_file_ops_queued, _queued);
      return;
    }
    // -EBUSY: the completion ring is full and completions overflowed; the
    // kernel takes no submission until they are reaped. Reap, then retry
    // once; what is still refused stays queued for the next flush().
    // Refused: what waits goes with the loop's flush (a count left full
    // would retry at every file operation).
    if (rc != -EBUSY && rc != -EAGAIN) {
      _file_ops_queued = 0;
      return;
    }
    ++_stats.submit_busy;
    // (Not from inside a reap: a receiver that arms or cancels from its
    // on_result() must not see the ring's head move under the reap.)
    if (_reaping) {
      _file_ops_queued = 0;
      return;
    }
    reap_completions();
  }
  _file_ops_queued = 0;
}

bool io_uring_backend::reap() noexcept { return reap_completions() > 0; }

unsigned io_uring_backend::reap_completions() noexcept {
  if (_reaping) return 0;
  _reaping = true;
  unsigned total = 0;
  // Bounded: a flood of completions yields to the rest of the loop.
  for (int round = 0; round < 8; ++round) {
    // Completions whose task work waits for us to enter the kernel (see
    // the constructor), and completions the kernel kept aside because the
    // ring was full (IORING_FEAT_NODROP): entering with GETEVENTS lands
    // both. No system call when neither waits.
    const unsigned flags = IO_URING_READ_ONCE(*_ring.sq.kflags);
    if (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
      if (flags & IORING_SQ_CQ_OVERFLOW) ++_stats.cq_overflow_flushes;
      io_uring_get_events(&_ring);
    }
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    bool rearm = false;
    io_uring_for_each_cqe(&_ring, head, cqe) {
      ++seen;
      if (cqe->user_data == wakeup_tag) {
        _wake_armed = false;
        rearm = !_closing;
        continue;
      }
      complete(*cqe);
    }
    if (seen == 0) break;
    io_uring_cq_advance(&_ring, seen);
    total += seen;
    if (rearm) arm_wakeup_read();
    // More kept aside: go round; otherwise done.
    if (!(IO_URING_READ_ONCE(*_ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) break;
  }
  _reaping = false;
  return total;
}

void io_uring_backend::wait(std::optional<timer_ns> deadline, const sigset_t* mask) noexcept {
  if (!_wake_armed && !_closing) arm_wakeup_read();
  drain_backlog();
  if (!_backlog.empty()) {
    // The ring is full and submissions still wait: hand the ring over,
    // then take more; if some still wait, do not sleep on them (what was
    // submitted may be receives that complete only much later).
    submit_queued();
    drain_backlog();
    if (!_backlog.empty()) deadline = to_timer_ns(steady_clock_type::now());
  }
  io_uring_cqe* cqe = nullptr;
  int rc;
  sigset_t* sigmask = const_cast<sigset_t*>(mask);
  if (deadline) {
    timer_ns left = *deadline - to_timer_ns(steady_clock_type::now());
    if (left < 0) left = 0;
    __kernel_timespec ts{left / 1'000'000'000, left % 1'000'000'000};
    rc = io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, &ts, sigmask);
  } else if (sigmask != nullptr) {
    rc = io_uring_submit_and_wait_timeout(&_ring, &cqe, 1, nullptr, sigmask);
  } else {
    rc = io_uring_submit_and_wait(&_ring, 1);
  }
  // The submissions went in with the wait, whatever it returned (-ETIME on
  // timeout, -EINTR on a signal).
  REEF_ASSERT(rc != -EEXIST, "an io_uring waited on from a thread other than its reactor's");
  _queued = io_uring_sq_ready(&_ring);
  _file_ops_queued = std::min(_file_ops_queued, _queued);
  reap();
}

void io_uring_backend::wakeup() noexcept {
  std::uint64_t one = 1;
  // A full counter (impossible in practice) still leaves it readable.
  [[maybe_unused]] auto rc = ::write(_wake_fd, &one, sizeof(one));
}

void io_uring_backend::cancel(int fd) noexcept {
  if (_in_flight == 0) return;
  // Operations on `fd` still in the backlog never reached the kernel.
  for (auto it = _backlog.begin(); it != _backlog.end();) {
    if (it->kind == entry::what::request && it->req.fd == fd) {
      completion* c = it->c;
      it = _backlog.erase(it);
      --_in_flight;
      c->result.set_value(-ECANCELED);
      delete c;
    } else {
      ++it;
    }
  }
  entry e{};
  e.kind = entry::what::cancel_fd;
  e.fd = fd;
  queue_entry(e);
}

void io_uring_backend::cancel_all() noexcept {
  _closing = true;
  _stopped = true;
  fail_backlog();
  if (_in_flight > 0) {
    io_uring_sqe* sqe = next_sqe();
    if (sqe != nullptr) {
      io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
      io_uring_sqe_set_data64(sqe, cancel_tag);
    }
  }
  // Completes everything, the wakeup read included (cancelled too). What
  // the receivers do from their last results must not reap beside us.
  _reaping = true;
  while (_in_flight > 0 || _wake_armed) {
    if (_wake_armed) wakeup();
    int rc = io_uring_submit_and_wait(&_ring, 1);
    _queued = io_uring_sq_ready(&_ring);
    // -EBUSY: completions overflowed; reaping below makes room.
    if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EBUSY) break;
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&_ring, head, cqe) {
      ++seen;
      if (cqe->user_data == wakeup_tag) {
        _wake_armed = false;
      } else {
        complete(*cqe);
      }
    }
    io_uring_cq_advance(&_ring, seen);
  }
  _reaping = false;
  _closing = false;
}

}  // namespace reef::core_internal
