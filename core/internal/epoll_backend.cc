#include "core/internal/epoll_backend.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace reef::core_internal {

namespace {

constexpr int events_max = 128;

bool would_block(long rc) noexcept { return rc == -EAGAIN || rc == -EWOULDBLOCK; }

long result_of(long rc) noexcept { return rc < 0 ? -errno : rc; }

std::uint32_t interest_of(const io_request& req) noexcept {
  using op = io_request::op;
  switch (req.kind) {
    case op::write:
    case op::writev:
    case op::send:
    case op::sendmsg:
    case op::connect:
      return EPOLLOUT;
    case op::poll: {
      std::uint32_t e = 0;
      if (req.flags & (POLLIN | POLLPRI | POLLRDHUP)) e |= EPOLLIN;
      if (req.flags & POLLOUT) e |= EPOLLOUT;
      return e != 0 ? e : EPOLLIN;
    }
    default:
      return EPOLLIN;
  }
}

// Runs one blocking call on a pool thread and completes its promise on the
// reactor thread.
class blocking_io final : public blocking_work {
 public:
  blocking_io(const io_request& req, std::size_t& in_flight) : _req(req), _in_flight(in_flight) {}
  future<long> get_future() noexcept { return _result.get_future(); }

  void run() noexcept override {
    using op = io_request::op;
    long rc = 0;
    switch (_req.kind) {
      case op::read:
        rc = ::pread(_req.fd, _req.buf, _req.len, _req.offset);
        break;
      case op::write:
        rc = ::pwrite(_req.fd, _req.buf, _req.len, _req.offset);
        break;
      case op::readv:
        rc = ::preadv(_req.fd, _req.iov, static_cast<int>(_req.len), _req.offset);
        break;
      case op::writev:
        rc = ::pwritev(_req.fd, _req.iov, static_cast<int>(_req.len), _req.offset);
        break;
      case op::fsync:
        rc = ::fsync(_req.fd);
        break;
      case op::fdatasync:
        rc = ::fdatasync(_req.fd);
        break;
      default:
        rc = -1;
        errno = EINVAL;
        break;
    }
    _rc = result_of(rc);
  }

  void complete() noexcept override {
    --_in_flight;
    _result.set_value(_rc);
    delete this;
  }

 private:
  io_request _req;
  std::size_t& _in_flight;
  promise<long> _result;
  long _rc = 0;
};

}  // namespace

epoll_backend::epoll_backend(blocking_pool& pool) : _pool(pool) {
  _epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (_epoll_fd < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
  _wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (_wake_fd < 0) {
    int err = errno;
    ::close(_epoll_fd);
    throw std::system_error(err, std::system_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = _wake_fd;
  if (::epoll_ctl(_epoll_fd, EPOLL_CTL_ADD, _wake_fd, &ev) < 0) {
    int err = errno;
    ::close(_wake_fd);
    ::close(_epoll_fd);
    throw std::system_error(err, std::system_category(), "epoll_ctl");
  }
}

epoll_backend::~epoll_backend() {
  cancel_all();
  ::close(_wake_fd);
  ::close(_epoll_fd);
}

long epoll_backend::attempt(io_request& req) noexcept {
  using op = io_request::op;
  switch (req.kind) {
    case op::read:
      return result_of(::read(req.fd, req.buf, req.len));
    case op::write:
      return result_of(::write(req.fd, req.buf, req.len));
    case op::readv:
      return result_of(::readv(req.fd, req.iov, static_cast<int>(req.len)));
    case op::writev:
      return result_of(::writev(req.fd, req.iov, static_cast<int>(req.len)));
    case op::recv:
      return result_of(::recv(req.fd, req.buf, req.len, req.flags | MSG_DONTWAIT));
    case op::send:
      return result_of(::send(req.fd, req.buf, req.len, req.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    case op::recvmsg:
      return result_of(::recvmsg(req.fd, req.msg, req.flags | MSG_DONTWAIT));
    case op::sendmsg:
      return result_of(::sendmsg(req.fd, req.msg, req.flags | MSG_DONTWAIT | MSG_NOSIGNAL));
    case op::accept:
      return result_of(::accept4(req.fd, req.addr, req.addrlen_out, req.flags));
    case op::connect: {
      long rc = result_of(::connect(req.fd, req.addr, req.addrlen));
      return rc == -EINPROGRESS ? -EAGAIN : rc;
    }
    case op::poll: {
      pollfd p{req.fd, static_cast<short>(req.flags), 0};
      long rc = result_of(::poll(&p, 1, 0));
      if (rc < 0) return rc;
      return rc == 0 ? -EAGAIN : p.revents;
    }
    case op::fsync:
    case op::fdatasync:
      break;
  }
  return -EINVAL;
}

long epoll_backend::finish_connect(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
  return err == 0 ? 0 : -err;
}

future<long> epoll_backend::submit_blocking(const io_request& req) noexcept {
  try {
    auto* work = new blocking_io(req, _in_flight);
    future<long> f = work->get_future();
    _pool.submit(work);
    ++_in_flight;
    return f;
  } catch (const std::bad_alloc&) {
    return make_ready_future<long>(-ENOMEM);
  } catch (const std::system_error& e) {
    return make_ready_future<long>(-e.code().value());
  }
}

future<long> epoll_backend::submit(const io_request& req) noexcept {
  using op = io_request::op;
  if (_stopped) return make_ready_future<long>(-ECANCELED);  // see cancel_all()
  ++_operations_submitted;
  if (req.positional() || req.kind == op::fsync || req.kind == op::fdatasync) {
    return submit_blocking(req);
  }
  fd_state* st = nullptr;
  auto it = _fds.find(req.fd);
  if (it != _fds.end()) st = &it->second;
  const std::uint32_t interest = interest_of(req);
  // Keep submission order per descriptor: behind earlier waiters in the
  // same direction, wait instead of trying.
  bool queued_behind = false;
  if (st != nullptr) {
    for (waiter* w = st->head; w != nullptr; w = w->next) {
      if (w->interest & interest) {
        queued_behind = true;
        break;
      }
    }
  }
  // A kept descriptor known to be drained waits for its next edge without
  // a call that would only say EAGAIN.
  const bool known_blocked = st != nullptr && st->persistent && st->registered != 0 &&
                             !((interest & EPOLLIN) && st->readable) &&
                             !((interest & EPOLLOUT) && st->writable);
  io_request attempt_req = req;
  bool connect_started = false;
  if (!queued_behind && !known_blocked) {
    long rc = attempt(attempt_req);
    if (st != nullptr) note_outcome(*st, req, interest, rc);
    if (!would_block(rc)) return make_ready_future<long>(rc);
    connect_started = req.kind == op::connect;
  }
  waiter* w;
  try {
    if (st == nullptr) st = &_fds[req.fd];
    w = new waiter{req, promise<long>(), interest, connect_started};
  } catch (const std::bad_alloc&) {
    return make_ready_future<long>(-ENOMEM);
  }
  future<long> f = w->result.get_future();
  enqueue(*st, w);
  update_registration(req.fd, *st);
  return f;
}

void epoll_backend::enqueue(fd_state& st, waiter* w) noexcept {
  if (st.tail != nullptr) {
    st.tail->next = w;
  } else {
    st.head = w;
  }
  st.tail = w;
  ++_waiting;
  ++_in_flight;
}

void epoll_backend::update_registration(int fd, fd_state& st) noexcept {
  std::uint32_t want = 0;
  for (waiter* w = st.head; w != nullptr; w = w->next) want |= w->interest;
  if (st.persistent) {
    // Registered at the first wait, for good; nothing to do after.
    if (st.registered != 0 || want == 0) return;
    want = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  }
  if (want == st.registered) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.fd = fd;
  int rc;
  if (want == 0) {
    rc = ::epoll_ctl(_epoll_fd, EPOLL_CTL_DEL, fd, &ev);
  } else if (st.registered == 0) {
    rc = ::epoll_ctl(_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && errno == EEXIST) rc = ::epoll_ctl(_epoll_fd, EPOLL_CTL_MOD, fd, &ev);
  } else {
    rc = ::epoll_ctl(_epoll_fd, EPOLL_CTL_MOD, fd, &ev);
    // The descriptor was closed and its number reused since it was added.
    if (rc < 0 && errno == ENOENT) rc = ::epoll_ctl(_epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  }
  if (rc < 0 && want != 0) {
    // epoll refuses the descriptor (a regular file, a closed fd): fail its
    // waiters with the reason rather than leave them waiting forever.
    complete_all(st, -errno);
    st.registered = 0;
    if (!st.persistent) _fds.erase(fd);
    return;
  }
  st.registered = want;
  if (want == 0) _fds.erase(fd);
}

void epoll_backend::keep_registered(int fd) noexcept {
  try {
    _fds[fd].persistent = true;
  } catch (const std::bad_alloc&) {
    // Without the entry the descriptor is registered per wait: still right.
  }
}

void epoll_backend::forget(int fd) noexcept {
  auto it = _fds.find(fd);
  if (it == _fds.end()) return;
  cancel(fd);  // (may drop an entry that was not kept)
  it = _fds.find(fd);
  if (it == _fds.end()) return;
  // close() would take the descriptor out of the epoll set only if no
  // duplicate of it lives (a child process may hold one): remove it here.
  if (it->second.registered != 0) ::epoll_ctl(_epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  _fds.erase(it);
}

void epoll_backend::note_outcome(fd_state& st, const io_request& req, std::uint32_t interest,
                                 long rc) noexcept {
  // After the peer's end of stream (or an error) every read returns at
  // once, and no further edge will say so: readable for good.
  if (!st.persistent || st.hung_up) return;
  using op = io_request::op;
  const bool in = interest & EPOLLIN;
  if (would_block(rc)) {
    if (in) st.readable = false;
    if (interest & EPOLLOUT) st.writable = false;
  } else if (in && rc > 0 && static_cast<std::size_t>(rc) < req.len &&
             (req.kind == op::recv || (req.kind == op::read && req.offset < 0))) {
    // A short read of a stream took all there was; whatever arrives after
    // it raises an edge. (0, end of stream, stays readable: it reads 0
    // again at once, and no edge would come.)
    st.readable = false;
  }
}

void epoll_backend::on_ready(int fd, std::uint32_t events) noexcept {
  auto it = _fds.find(fd);
  if (it == _fds.end()) return;
  fd_state& st = it->second;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) st.hung_up = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) st.readable = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) st.writable = true;
  const bool error = events & (EPOLLERR | EPOLLHUP);
  std::uint32_t blocked = 0;  // directions where an op would still block
  waiter* prev = nullptr;
  waiter* w = st.head;
  while (w != nullptr) {
    waiter* next = w->next;
    const bool ready = error || (w->interest & events);
    long rc = -EAGAIN;
    if (ready && !(w->interest & blocked)) {
      if (w->req.kind == io_request::op::connect && w->connect_started) {
        rc = finish_connect(fd);
      } else {
        rc = attempt(w->req);
        note_outcome(st, w->req, w->interest, rc);
        if (w->req.kind == io_request::op::connect && would_block(rc)) w->connect_started = true;
      }
    }
    if (would_block(rc)) {
      blocked |= w->interest;
      prev = w;
    } else {
      if (prev != nullptr) {
        prev->next = next;
      } else {
        st.head = next;
      }
      if (st.tail == w) st.tail = prev;
      --_waiting;
      --_in_flight;
      w->result.set_value(rc);
      delete w;
    }
    w = next;
  }
  update_registration(fd, st);
}

bool epoll_backend::process_events(int timeout_ms, const timespec* timeout, const sigset_t* mask) noexcept {
  epoll_event events[events_max];
  int n;
  if (timeout_ms == 0) {
    n = ::epoll_wait(_epoll_fd, events, events_max, 0);
  } else {
    n = _have_epoll_pwait2 ? ::epoll_pwait2(_epoll_fd, events, events_max, timeout, mask) : -1;
    if (n < 0 && (!_have_epoll_pwait2 || errno == ENOSYS)) {
      // Before Linux 5.11: milliseconds, rounded up so a timer is not missed.
      _have_epoll_pwait2 = false;
      int ms = -1;
      if (timeout != nullptr) {
        long long total = static_cast<long long>(timeout->tv_sec) * 1000 + (timeout->tv_nsec + 999'999) / 1'000'000;
        ms = total > 0x7fffffff ? 0x7fffffff : static_cast<int>(total);
      }
      n = ::epoll_pwait(_epoll_fd, events, events_max, ms, mask);
    }
  }
  if (n <= 0) return false;
  bool did_work = false;
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == _wake_fd) {
      std::uint64_t value;
      [[maybe_unused]] auto rc = ::read(_wake_fd, &value, sizeof(value));
      continue;
    }
    did_work = true;
    on_ready(fd, events[i].events);
  }
  return did_work;
}

bool epoll_backend::reap() noexcept {
  if (_waiting == 0) return false;
  return process_events(0, nullptr, nullptr);
}

void epoll_backend::wait(std::optional<timer_ns> deadline, const sigset_t* mask) noexcept {
  if (deadline) {
    timer_ns left = *deadline - to_timer_ns(steady_clock_type::now());
    if (left < 0) left = 0;
    timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    process_events(-1, &ts, mask);
  } else {
    process_events(-1, nullptr, mask);
  }
}

void epoll_backend::wakeup() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto rc = ::write(_wake_fd, &one, sizeof(one));
}

void epoll_backend::complete_all(fd_state& st, long rc) noexcept {
  while (waiter* w = st.head) {
    st.head = w->next;
    --_waiting;
    --_in_flight;
    w->result.set_value(rc);
    delete w;
  }
  st.tail = nullptr;
}

void epoll_backend::cancel(int fd) noexcept {
  auto it = _fds.find(fd);
  if (it == _fds.end()) return;
  fd_state& st = it->second;
  complete_all(st, -ECANCELED);
  update_registration(fd, st);  // drops the descriptor, unless it is kept
}

void epoll_backend::cancel_all() noexcept {
  _stopped = true;
  for (auto& [fd, st] : _fds) {
    complete_all(st, -ECANCELED);
    if (st.registered != 0) ::epoll_ctl(_epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  }
  _fds.clear();
  // Work on the blocking threads cannot be cancelled; the reactor drains it.
}

}  // namespace reef::core_internal
