#include "net/posix_stack.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <memory>
#include <optional>
#include <mutex>
#include <unordered_map>
#include <system_error>
#include <vector>

#include "core/abort_source.h"
#include "core/coroutine.h"
#include "core/do_with.h"
#include "core/loop.h"
#include "core/log.h"
#include "core/lw_shared_ptr.h"
#include "core/metrics.h"
#include "core/queue.h"
#include "core/reactor.h"
#include "core/shared_future.h"
#include "core/sleep.h"
#include "core/timer.h"
#include "core/with_timeout.h"
#include "smp/smp.h"

namespace reef {

namespace {

std::system_error error_of(int err, const char* call) {
  return std::system_error(err, std::system_category(), call);
}

// A descriptor shared by a socket and its streams; closed when the last
// goes (pending operations hold a reference, so the number is never reused
// under them). The I/O backend may keep it registered meanwhile.
class posix_fd {
 public:
  explicit posix_fd(int fd) noexcept : _fd(fd) {
    if (_fd >= 0) engine().io().keep_registered(_fd);
  }
  ~posix_fd() {
    if (_fd < 0) return;
    if (engine_is_ready()) engine().io().forget(_fd);
    ::close(_fd);
  }
  posix_fd(const posix_fd&) = delete;
  posix_fd& operator=(const posix_fd&) = delete;
  int get() const noexcept { return _fd; }

 private:
  int _fd;
};

// Copied into every operation's continuation: a shard's own count, no
// atomics.
using shared_fd = lw_shared_ptr<posix_fd>;

shared_fd make_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw error_of(errno, "socket");
  return make_lw_shared<posix_fd>(fd);
}

socket_address address_of(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc < 0) return socket_address();
  return socket_address(reinterpret_cast<sockaddr*>(&ss), len);
}

int get_int(int fd, int level, int option, const char* call) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, level, option, &value, &len) < 0) throw error_of(errno, call);
  return value;
}

void set_int(int fd, int level, int option, int value, const char* call) {
  if (::setsockopt(fd, level, option, &value, sizeof(value)) < 0) throw error_of(errno, call);
}

bool get_flag(int fd, int level, int option) {
  int value = 0;
  socklen_t len = sizeof(value);
  ::getsockopt(fd, level, option, &value, &len);
  return value != 0;
}

void set_flag(int fd, int level, int option, bool on, const char* call) { set_int(fd, level, option, on ? 1 : 0, call); }

// --- Counters. -----------------------------------------------------------------

logger& posix_log() {
  static auto* l = new logger("posix_stack");
  return *l;
}

// What this shard's sockets did, for the metrics (plain increments: one
// shard's only). Trivially destructible: no TLS guard on the fast path.
struct posix_counters {
  std::uint64_t bytes_received;
  std::uint64_t bytes_sent;
  std::uint64_t receive_errors;
  std::uint64_t send_errors;
  std::uint64_t connections_accepted;
  std::uint64_t accept_errors;
  std::uint64_t connections_made;  // connect() that succeeded
  std::uint64_t connect_errors;
  std::uint64_t datagrams_received;
  std::uint64_t datagrams_sent;
  std::uint64_t datagram_errors;
};
thread_local posix_counters counters{};

// --- Streams. ------------------------------------------------------------------

// A reset (or a shutdown of our side) ends a stream cleanly.
bool ends_stream(long n) noexcept {
  return n == -ECONNRESET || n == -ECONNABORTED || n == -ETIMEDOUT || n == -ENOTCONN;
}

// One receive into a buffer of its own.
future<temporary_buffer<char>> receive_once(const shared_fd& fd) {
  temporary_buffer<char> buf;
  try {
    buf = temporary_buffer<char>(posix_read_buffer_size);
  } catch (...) {
    return make_exception_future<temporary_buffer<char>>(std::current_exception());
  }
  char* data = buf.get_write();
  return engine()
      .io()
      .submit(io_request::recv(fd->get(), data, buf.size()))
      .then([fd, buf = std::move(buf)](long n) mutable -> future<temporary_buffer<char>> {
        if (n >= 0) {
          counters.bytes_received += static_cast<std::uint64_t>(n);
          buf.trim(static_cast<std::size_t>(n));
          return make_ready_future<temporary_buffer<char>>(std::move(buf));
        }
        if (ends_stream(n)) return make_ready_future<temporary_buffer<char>>();
        ++counters.receive_errors;
        return make_exception_future<temporary_buffer<char>>(error_of(static_cast<int>(-n), "recv"));
      });
}

// Where the backend has no multishot receive (epoll): one operation per read.
class posix_source final : public data_source_impl<char> {
 public:
  explicit posix_source(shared_fd fd) noexcept : _fd(std::move(fd)) {}
  future<temporary_buffer<char>> get() override { return receive_once(_fd); }

 private:
  shared_fd _fd;
};

// The life of a multishot operation (a receive or an accept) on behalf of
// an owner that may go first. States: idle (!_armed), running (_armed),
// ending (_armed and _cancelling: a last result will come); orphaned once
// the owner is gone, after which results are dropped and the last one
// deletes this. The operation keeps its descriptor open while it runs.
class multishot_operation : public multishot_receiver {
 public:
  explicit multishot_operation(shared_fd fd) noexcept : _fd(std::move(fd)) {}

  // The owner is gone: end the operation, then this.
  void orphan() noexcept {
    _orphaned = true;
    if (!_armed) {
      delete this;
      return;
    }
    cancel();
  }

 protected:
  virtual ~multishot_operation() = default;
  // Queues the operation in the backend; false if it cannot run now.
  virtual bool start() noexcept = 0;

  bool arm() noexcept {
    _armed = start();
    return _armed;
  }
  // Ends a running operation (its last result follows).
  void cancel() noexcept {
    if (_armed && !_cancelling) _cancelling = engine().io().cancel_multishot(*this);
  }
  // The part of on_result() every operation shares: notes the end of the
  // operation, and for an orphan finishes the job (deletes this, or
  // cancels again). Returns whether the result is for a live owner.
  bool for_live_owner(bool more) noexcept {
    if (!more) {
      _armed = false;
      _cancelling = false;
    }
    if (!_orphaned) return true;
    if (!_armed) {
      delete this;
    } else {
      cancel();  // (it may have failed before)
    }
    return false;
  }

  shared_fd _fd;
  bool _armed = false;
  bool _cancelling = false;
  bool _orphaned = false;
};

// Where it has (io_uring): one multishot receive feeds the stream. Bytes
// arrive in the backend's pool buffers whether or not anyone reads, and wait
// here; when `ready_max` buffers wait unread the receive is cancelled, and
// reading starts it again. When the pool runs dry (-ENOBUFS) a read waiting
// is served by one receive into a buffer of its own, so it always makes
// progress.
class multishot_source final : public data_source_impl<char> {
 public:
  static constexpr std::size_t ready_max = 4;

  explicit multishot_source(shared_fd fd) : _st(new state(std::move(fd))) {}
  ~multishot_source() override { _st->release(); }

  future<temporary_buffer<char>> get() override { return _st->get(); }

 private:
  // Outlives the source while the receive is in flight (its receiver; see
  // multishot_operation). Bytes wait in _ready, in order; at most one read
  // waits in _reader; _eof and _error are final.
  class state final : public multishot_operation {
   public:
    using multishot_operation::multishot_operation;

    future<temporary_buffer<char>> get() {
      if (!_ready.empty()) {
        auto b = std::move(_ready.front());
        _ready.pop_front();
        return make_ready_future<temporary_buffer<char>>(std::move(b));
      }
      if (_error) return make_exception_future<temporary_buffer<char>>(_error);
      if (_eof) return make_ready_future<temporary_buffer<char>>();
      if (!_armed && !arm()) return receive_once(_fd);
      _reader.emplace();
      return _reader->get_future();
    }

    // The source is gone.
    void release() noexcept {
      _ready.clear();
      orphan();
    }

    void on_result(long result, temporary_buffer<char> data, bool more) noexcept override {
      if (!for_live_owner(more)) return;
      if (result > 0) {
        counters.bytes_received += static_cast<std::uint64_t>(result);
        _ready.push_back(std::move(data));
      } else if (result == 0 || ends_stream(result)) {
        _eof = true;
      } else if (result != -ENOBUFS && result != -ECANCELED) {
        ++counters.receive_errors;
        _error = std::make_exception_ptr(error_of(static_cast<int>(-result), "recv"));
      }
      if (_reader) {
        if (!_ready.empty()) {
          _reader->set_value(std::move(_ready.front()));
          _ready.pop_front();
          _reader.reset();
        } else if (_error) {
          _reader->set_exception(_error);
          _reader.reset();
        } else if (_eof) {
          _reader->set_value(temporary_buffer<char>());
          _reader.reset();
        } else if (!_armed) {
          // Ended (the pool ran dry, or cancelled) with a read waiting.
          auto p = std::move(*_reader);
          _reader.reset();
          if (result == -ENOBUFS) {
            receive_once(_fd).forward_to(std::move(p));
          } else if (arm()) {
            _reader.emplace(std::move(p));
          } else {
            p.set_exception(error_of(ECONNABORTED, "recv"));  // the reactor is stopping
          }
        }
      }
      if (_ready.size() >= ready_max) cancel();  // (tried again at the next result)
    }

   private:
    bool start() noexcept override { return engine().io().recv_multishot(_fd->get(), *this); }

    std::deque<temporary_buffer<char>> _ready;
    std::optional<promise<temporary_buffer<char>>> _reader;
    std::exception_ptr _error;
    bool _eof = false;
  };

  state* _st;
};

class posix_sink final : public data_sink_impl<char> {
 public:
  explicit posix_sink(shared_fd fd) noexcept : _fd(std::move(fd)) {}

  future<> put(temporary_buffer<char> buf) override {
    if (buf.empty()) return make_ready_future<>();
    // Partial sends go round again with the rest.
    return do_with(std::move(buf), [fd = _fd](temporary_buffer<char>& b) {
      return repeat([fd, &b] {
        return engine()
            .io()
            .submit(io_request::send(fd->get(), b.get(), b.size(), MSG_NOSIGNAL))
            .then([&b](long n) {
              if (n < 0) {
                ++counters.send_errors;
                return make_exception_future<stop_iteration>(error_of(static_cast<int>(-n), "send"));
              }
              counters.bytes_sent += static_cast<std::uint64_t>(n);
              b.trim_front(static_cast<std::size_t>(n));
              return make_ready_future<stop_iteration>(b.empty() ? stop_iteration::yes
                                                                 : stop_iteration::no);
            });
      });
    });
  }

  future<> put(std::vector<temporary_buffer<char>> bufs) override {
    // One gathered sendmsg for the lot (IOV_MAX at a time).
    struct state {
      std::vector<temporary_buffer<char>> bufs;
      std::vector<iovec> iov;
      std::size_t first = 0;  // first buffer not fully sent
      msghdr msg{};
    };
    auto st = std::make_unique<state>();
    st->bufs = std::move(bufs);
    auto* raw = st.get();
    return do_with(std::move(st), [fd = _fd, raw](auto&) {
      return repeat([fd, raw] {
        while (raw->first < raw->bufs.size() && raw->bufs[raw->first].empty()) ++raw->first;
        if (raw->first == raw->bufs.size()) return make_ready_future<stop_iteration>(stop_iteration::yes);
        raw->iov.clear();
        for (std::size_t i = raw->first; i < raw->bufs.size() && raw->iov.size() < 1024; ++i) {
          raw->iov.push_back(iovec{raw->bufs[i].get_write(), raw->bufs[i].size()});
        }
        raw->msg = msghdr{};
        raw->msg.msg_iov = raw->iov.data();
        raw->msg.msg_iovlen = raw->iov.size();
        return engine().io().submit(io_request::sendmsg(fd->get(), &raw->msg, MSG_NOSIGNAL)).then([raw](long n) {
          if (n < 0) {
            ++counters.send_errors;
            return make_exception_future<stop_iteration>(error_of(static_cast<int>(-n), "sendmsg"));
          }
          counters.bytes_sent += static_cast<std::uint64_t>(n);
          auto left = static_cast<std::size_t>(n);
          while (left > 0) {
            auto& b = raw->bufs[raw->first];
            std::size_t take = std::min(left, b.size());
            b.trim_front(take);
            left -= take;
            if (b.empty()) ++raw->first;
          }
          return make_ready_future<stop_iteration>(stop_iteration::no);
        });
      });
    });
  }

  future<> close() override {
    // The peer reads end of stream; the descriptor lives as long as the
    // socket and its input do.
    ::shutdown(_fd->get(), SHUT_WR);
    return make_ready_future<>();
  }

  std::size_t buffer_size() const noexcept override { return 8192; }

 private:
  shared_fd _fd;
};

class posix_connected_socket final : public connected_socket_impl {
 public:
  explicit posix_connected_socket(shared_fd fd) noexcept : _fd(std::move(fd)) {}
  data_source<char> source() override {
    if (engine().io().supports_multishot()) return data_source<char>(std::make_unique<multishot_source>(_fd));
    return data_source<char>(std::make_unique<posix_source>(_fd));
  }
  data_sink<char> sink() override { return data_sink<char>(std::make_unique<posix_sink>(_fd)); }
  void shutdown_input() override { ::shutdown(_fd->get(), SHUT_RD); }
  void shutdown_output() override { ::shutdown(_fd->get(), SHUT_WR); }
  void set_nodelay(bool on) override { set_flag(_fd->get(), IPPROTO_TCP, TCP_NODELAY, on, "setsockopt(TCP_NODELAY)"); }
  bool get_nodelay() const override { return get_flag(_fd->get(), IPPROTO_TCP, TCP_NODELAY); }
  void set_keepalive(bool on) override { set_flag(_fd->get(), SOL_SOCKET, SO_KEEPALIVE, on, "setsockopt(SO_KEEPALIVE)"); }
  bool get_keepalive() const override { return get_flag(_fd->get(), SOL_SOCKET, SO_KEEPALIVE); }
  void set_keepalive_parameters(const tcp_keepalive_params& p) override {
    auto positive = [](long long v, const char* what) {
      if (v <= 0 || v > 32767) {
        throw std::invalid_argument(std::string("keepalive ") + what + " must be 1..32767, not " + std::to_string(v));
      }
      return static_cast<int>(v);
    };
    const int idle = positive(p.idle.count(), "idle seconds");
    const int interval = positive(p.interval.count(), "interval seconds");
    const int count = positive(p.count, "probe count");
    set_int(_fd->get(), IPPROTO_TCP, TCP_KEEPIDLE, idle, "setsockopt(TCP_KEEPIDLE)");
    set_int(_fd->get(), IPPROTO_TCP, TCP_KEEPINTVL, interval, "setsockopt(TCP_KEEPINTVL)");
    set_int(_fd->get(), IPPROTO_TCP, TCP_KEEPCNT, count, "setsockopt(TCP_KEEPCNT)");
  }
  tcp_keepalive_params get_keepalive_parameters() const override {
    tcp_keepalive_params p;
    p.idle = std::chrono::seconds(get_int(_fd->get(), IPPROTO_TCP, TCP_KEEPIDLE, "getsockopt(TCP_KEEPIDLE)"));
    p.interval = std::chrono::seconds(get_int(_fd->get(), IPPROTO_TCP, TCP_KEEPINTVL, "getsockopt(TCP_KEEPINTVL)"));
    p.count = static_cast<unsigned>(get_int(_fd->get(), IPPROTO_TCP, TCP_KEEPCNT, "getsockopt(TCP_KEEPCNT)"));
    return p;
  }
  void set_send_buffer_size(int bytes) override {
    if (bytes <= 0) throw std::invalid_argument("send buffer size must be positive, not " + std::to_string(bytes));
    set_int(_fd->get(), SOL_SOCKET, SO_SNDBUF, bytes, "setsockopt(SO_SNDBUF)");
  }
  int get_send_buffer_size() const override { return get_int(_fd->get(), SOL_SOCKET, SO_SNDBUF, "getsockopt(SO_SNDBUF)"); }
  void set_receive_buffer_size(int bytes) override {
    if (bytes <= 0) throw std::invalid_argument("receive buffer size must be positive, not " + std::to_string(bytes));
    set_int(_fd->get(), SOL_SOCKET, SO_RCVBUF, bytes, "setsockopt(SO_RCVBUF)");
  }
  int get_receive_buffer_size() const override {
    return get_int(_fd->get(), SOL_SOCKET, SO_RCVBUF, "getsockopt(SO_RCVBUF)");
  }
  void set_linger(std::optional<std::chrono::seconds> linger) override {
    ::linger l{};
    if (linger) {
      if (linger->count() < 0 || linger->count() > 65535) {
        throw std::invalid_argument("linger must be 0..65535 s, not " + std::to_string(linger->count()));
      }
      l.l_onoff = 1;
      l.l_linger = static_cast<int>(linger->count());
    }
    if (::setsockopt(_fd->get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0) throw error_of(errno, "setsockopt(SO_LINGER)");
  }
  std::optional<std::chrono::seconds> get_linger() const override {
    ::linger l{};
    socklen_t len = sizeof(l);
    if (::getsockopt(_fd->get(), SOL_SOCKET, SO_LINGER, &l, &len) < 0) throw error_of(errno, "getsockopt(SO_LINGER)");
    if (!l.l_onoff) return std::nullopt;
    return std::chrono::seconds(l.l_linger);
  }
  socket_address local_address() const override { return address_of(_fd->get(), false); }
  socket_address remote_address() const override { return address_of(_fd->get(), true); }

 private:
  shared_fd _fd;
};

connected_socket make_connected(int fd) {
  return connected_socket(std::make_unique<posix_connected_socket>(make_lw_shared<posix_fd>(fd)));
}

// --- Listening. ------------------------------------------------------------------

// A connection accepted but not yet a connected_socket: a descriptor can
// travel to another shard, a socket cannot.
struct accepted_fd {
  int fd;
  socket_address peer;
};

// Accepts with one multishot operation (io_uring): connections the kernel
// hands over wait here, at most `ready_max` (then the operation is
// cancelled until accept() catches up; the rest wait in the kernel's
// backlog). Outlives its socket while the operation is in flight (see
// multishot_operation); _aborted (after abort_accept()) closes whatever
// still arrives, and _error holds a failure for the next accept() to
// report.
class multishot_acceptor final : public multishot_operation {
 public:
  static constexpr std::size_t ready_max = 64;

  using multishot_operation::multishot_operation;

  // The next connection; nullopt if the operation cannot be started now
  // (the caller accepts the plain way).
  std::optional<future<accepted_fd>> accept() {
    if (!_ready.empty()) {
      int fd = _ready.front();
      _ready.pop_front();
      return make_ready_future<accepted_fd>(accepted_fd{fd, address_of(fd, true)});
    }
    if (_error != 0) return make_exception_future<accepted_fd>(error_of(std::exchange(_error, 0), "accept"));
    if (!_armed && !arm()) return std::nullopt;
    _reader.emplace();
    return _reader->get_future();
  }

  // abort_accept(): a waiting accept() fails, connections still coming are
  // closed.
  void abort() noexcept {
    _aborted = true;
    if (_reader) {
      _reader->set_exception(error_of(ECONNABORTED, "accept"));
      _reader.reset();
    }
  }

  // The socket is gone: a waiting accept() fails now.
  void release() noexcept {
    abort();
    for (int fd : _ready) ::close(fd);
    _ready.clear();
    orphan();
  }

  void on_result(long result, temporary_buffer<char>, bool more) noexcept override {
    if (result >= 0 && (_orphaned || _aborted)) ::close(static_cast<int>(result));
    if (!for_live_owner(more) || _aborted) return;
    if (result >= 0) {
      _ready.push_back(static_cast<int>(result));
    } else if (result != -ECANCELED) {
      _error = static_cast<int>(-result);  // EMFILE, ENOMEM, ...: the next accept() says so
    }
    if (_reader) {
      if (!_ready.empty()) {
        int fd = _ready.front();
        _ready.pop_front();
        _reader->set_value(accepted_fd{fd, address_of(fd, true)});
        _reader.reset();
      } else if (_error != 0) {
        _reader->set_exception(error_of(std::exchange(_error, 0), "accept"));
        _reader.reset();
      } else if (!_armed && !arm()) {
        _reader->set_exception(error_of(ECONNABORTED, "accept"));  // the reactor is stopping
        _reader.reset();
      }
    }
    if (_ready.size() >= ready_max) cancel();
  }

 private:
  bool start() noexcept override { return engine().io().accept_multishot(_fd->get(), *this); }

  std::deque<int> _ready;
  std::optional<promise<accepted_fd>> _reader;
  int _error = 0;
  bool _aborted = false;
};

// Accepts on a socket of this shard. What a pending accept needs lives in
// `_shared` (the descriptor and whether the socket was aborted or is gone),
// never in the socket itself: the socket may be destroyed while an accept
// waits, which then fails (ECONNABORTED) and touches nothing freed.
class posix_server_socket final : public server_socket_impl {
 public:
  explicit posix_server_socket(shared_fd fd) : _shared(make_lw_shared<shared>(std::move(fd))) {
    if (engine().io().supports_multishot()) _acceptor = new multishot_acceptor(_shared->fd);
  }
  ~posix_server_socket() override {
    _shared->aborted = true;
    if (_shared->accept_pending && engine_is_ready()) engine().io().cancel(_shared->fd->get());
    if (_acceptor != nullptr) _acceptor->release();
  }
  posix_server_socket(const posix_server_socket&) = delete;
  posix_server_socket& operator=(const posix_server_socket&) = delete;

  // The next connection's descriptor (the caller owns it).
  future<accepted_fd> accept_fd() {
    if (_shared->aborted) return make_exception_future<accepted_fd>(error_of(ECONNABORTED, "accept"));
    if (_acceptor != nullptr) {
      if (auto f = _acceptor->accept()) return std::move(*f);
    }
    struct peer {
      sockaddr_storage address{};
      socklen_t length = sizeof(sockaddr_storage);
    };
    auto p = std::make_unique<peer>();
    auto* raw = p.get();
    _shared->accept_pending = true;
    return engine()
        .io()
        .submit(io_request::accept(_shared->fd->get(), reinterpret_cast<sockaddr*>(&raw->address), &raw->length))
        .then([st = _shared, p = std::move(p)](long rc) -> future<accepted_fd> {
          st->accept_pending = false;
          if (rc < 0 || st->aborted) {
            if (rc >= 0) ::close(static_cast<int>(rc));
            int err = st->aborted || rc == -EINVAL || rc == -ECANCELED ? ECONNABORTED : static_cast<int>(-rc);
            return make_exception_future<accepted_fd>(error_of(err, "accept"));
          }
          return make_ready_future<accepted_fd>(accepted_fd{
              static_cast<int>(rc), socket_address(reinterpret_cast<sockaddr*>(&p->address), p->length)});
        });
  }

  future<accept_result> accept() override {
    return accept_fd().then_wrapped([](future<accepted_fd> f) {
      if (f.failed()) {
        ++counters.accept_errors;
        return make_exception_future<accept_result>(f.get_exception());
      }
      accepted_fd a = f.get();
      ++counters.connections_accepted;
      return make_ready_future<accept_result>(accept_result{make_connected(a.fd), a.peer});
    });
  }

  void abort_accept() override {
    if (_shared->aborted) return;
    _shared->aborted = true;
    // The pending accept fails (EINVAL after the shutdown, or ECANCELED).
    ::shutdown(_shared->fd->get(), SHUT_RDWR);
    engine().io().cancel(_shared->fd->get());
    if (_acceptor != nullptr) _acceptor->abort();
  }

  socket_address local_address() const override { return address_of(_shared->fd->get(), false); }

 private:
  struct shared {
    explicit shared(shared_fd f) noexcept : fd(std::move(f)) {}
    shared_fd fd;
    bool aborted = false;
    bool accept_pending = false;  // a plain (not multishot) accept is in the backend
  };
  lw_shared_ptr<shared> _shared;
  multishot_acceptor* _acceptor = nullptr;  // where the backend has multishot
};

// load_balancing::round_robin: shard 0's socket accepts, and hands each
// connection to the listening shards in turn.
//
// Who listens is known without a lock per connection: an address's group
// (found once, at listen(), in a registry that a mutex guards) has one bit
// per shard, set by the shard itself while it listens; shard 0 reads the
// bits to pick the next one. A connection reaches its shard as a message,
// where the shard's own table (thread-local) finds its member for the
// address; a shard that stopped listening meanwhile closes it. Groups are
// keyed by the full address: IPv4 and IPv6 listeners on one port are
// different groups.
class round_robin_member;

struct round_robin_group {
  static constexpr unsigned words = (smp::shards_max + 63) / 64;
  std::atomic<std::uint64_t> listening[words] = {};
  std::size_t next = 0;  // shard 0 only
  unsigned refs = 0;     // under round_robin_mutex: members and accept loops holding it

  void set(unsigned shard, bool on) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (shard % 64);
    if (on) {
      listening[shard / 64].fetch_or(bit, std::memory_order_release);
    } else {
      listening[shard / 64].fetch_and(~bit, std::memory_order_release);
    }
  }
  // Shard 0: the next listening shard in turn, or -1.
  int pick() noexcept {
    const unsigned n = smp::count;
    for (unsigned i = 0; i < n; ++i) {
      const unsigned shard = static_cast<unsigned>((next + i) % n);
      if (listening[shard / 64].load(std::memory_order_acquire) & (std::uint64_t{1} << (shard % 64))) {
        next = shard + 1;
        return static_cast<int>(shard);
      }
    }
    return -1;
  }
};

std::mutex round_robin_mutex;  // the registry: at listen() and close, never per connection
std::unordered_map<socket_address, std::unique_ptr<round_robin_group>>& round_robin_registry() {
  static auto* registry = new std::unordered_map<socket_address, std::unique_ptr<round_robin_group>>();
  return *registry;
}

round_robin_group* hold_group(const socket_address& address) {
  std::lock_guard lock(round_robin_mutex);
  auto& slot = round_robin_registry()[address];
  if (!slot) slot = std::make_unique<round_robin_group>();
  ++slot->refs;
  return slot.get();
}

void release_group(const socket_address& address) noexcept {
  std::lock_guard lock(round_robin_mutex);
  auto& registry = round_robin_registry();
  auto it = registry.find(address);
  if (it != registry.end() && --it->second->refs == 0) registry.erase(it);
}

// This shard's members, by address (this shard only).
thread_local std::unordered_map<socket_address, round_robin_member*> round_robin_local;

// Shard 0's accept loop, shared by its member and the loop itself: the
// member may go first (the loop then ends at its next accept).
struct round_robin_loop {
  round_robin_loop(socket_address a, std::unique_ptr<posix_server_socket> l)
      : address(a), listener(std::move(l)), group(hold_group(a)) {}
  ~round_robin_loop() { release_group(address); }
  socket_address address;
  std::unique_ptr<posix_server_socket> listener;
  round_robin_group* group;
  bool aborted = false;
};

class round_robin_member final : public server_socket_impl {
 public:
  // Connections waiting to be accepted on this shard, at most (more are
  // refused: closed at once).
  static constexpr std::size_t inbox_max = 1024;

  // `listener` is shard 0's socket; null on the other shards.
  round_robin_member(socket_address address, std::unique_ptr<posix_server_socket> listener)
      : _address(address), _group(hold_group(address)), _inbox(inbox_max) {
    round_robin_local[_address] = this;
    _group->set(this_shard_id(), true);
    if (listener) _loop = make_lw_shared<round_robin_loop>(address, std::move(listener));
  }

  ~round_robin_member() override {
    // Another member made on this shard for the address since (the newest
    // takes the address) keeps its place.
    auto it = round_robin_local.find(_address);
    if (it != round_robin_local.end() && it->second == this) {
      round_robin_local.erase(it);
      _group->set(this_shard_id(), false);
    }
    release_group(_address);
    if (_loop) stop_loop();
    while (!_inbox.empty()) {
      int fd = _inbox.pop().fd;
      if (fd >= 0) ::close(fd);
    }
  }

  future<accept_result> accept() override {
    if (_aborted) return make_exception_future<accept_result>(error_of(ECONNABORTED, "accept"));
    if (_loop && !_loop_done) _loop_done.emplace(accept_loop(_loop));
    return _inbox.pop_eventually().then([](accepted_fd a) -> future<accept_result> {
      if (a.fd < 0) return make_exception_future<accept_result>(error_of(ECONNABORTED, "accept"));
      return make_ready_future<accept_result>(accept_result{make_connected(a.fd), a.peer});
    });
  }

  void abort_accept() override {
    if (_aborted) return;
    _aborted = true;
    if (_loop) stop_loop();
    deliver(accepted_fd{-1, socket_address()});
  }

  future<> close() override {
    abort_accept();
    if (!_loop_done) return make_ready_future<>();
    return _loop_done->get_future();
  }

  socket_address local_address() const override { return _address; }

  // On this member's shard: a connection for it (fd -1: stop).
  void deliver(accepted_fd a) {
    if (!_inbox.push(std::move(a)) && a.fd >= 0) ::close(a.fd);  // full: refused
  }

 private:
  void stop_loop() noexcept {
    _loop->aborted = true;
    _loop->listener->abort_accept();
  }

  // Shard 0: accepts and hands out in turn, until aborted. Holds its state,
  // never the member.
  static future<> accept_loop(lw_shared_ptr<round_robin_loop> loop) {
    while (!loop->aborted) {
      accepted_fd a;
      bool back_off = false;
      try {
        a = co_await loop->listener->accept_fd();
      } catch (const std::system_error& e) {
        if (loop->aborted || e.code().value() == ECONNABORTED) continue;
        back_off = true;  // out of descriptors or memory: the connections we have may free some
      }
      if (back_off) {
        co_await sleep(std::chrono::milliseconds(10));
        continue;
      }
      hand_out(*loop, a);
    }
  }

  static void hand_out(round_robin_loop& loop, accepted_fd a) {
    int shard = loop.group->pick();
    if (shard < 0) {
      ::close(a.fd);  // nobody listens any more
      return;
    }
    if (static_cast<unsigned>(shard) == this_shard_id()) {
      deliver_here(loop.address, a);
      return;
    }
    (void)smp::submit_to(static_cast<unsigned>(shard), [a, address = loop.address] { deliver_here(address, a); })
        .handle_exception([fd = a.fd](std::exception_ptr) {
          ::close(fd);  // the message was refused (shutting down)
        });
  }

  // On the chosen shard: to its member for the address, or closed.
  static void deliver_here(const socket_address& address, accepted_fd a) {
    auto it = round_robin_local.find(address);
    if (it == round_robin_local.end()) {
      ::close(a.fd);  // it stopped listening meanwhile
      return;
    }
    it->second->deliver(a);
  }

  socket_address _address;
  round_robin_group* _group;
  queue<accepted_fd> _inbox;
  lw_shared_ptr<round_robin_loop> _loop;  // shard 0 only
  std::optional<shared_future<>> _loop_done;
  bool _aborted = false;
};

// --- UDP. -----------------------------------------------------------------------------

// A UDP socket. What a pending receive needs lives in `_shared` (the
// descriptor and whether the channel is closed), never in the channel: it
// may be destroyed while a receive waits, which then fails (ECONNABORTED).
class posix_udp_channel final : public udp_channel_impl {
 public:
  explicit posix_udp_channel(shared_fd fd) : _shared(make_lw_shared<shared>(std::move(fd))), _fd(_shared->fd) {}
  ~posix_udp_channel() override { close(); }

  future<> send(const socket_address& destination, packet&& p) override {
    struct state {
      packet p;
      socket_address destination;
      std::vector<iovec> iov;
      msghdr msg{};
    };
    auto st = std::make_unique<state>();
    st->p = std::move(p);
    st->destination = destination;
    for (const auto& f : st->p.fragments()) st->iov.push_back(iovec{f.base, f.size});
    st->msg.msg_name = const_cast<sockaddr*>(st->destination.as_sockaddr());
    st->msg.msg_namelen = st->destination.length();
    st->msg.msg_iov = st->iov.data();
    st->msg.msg_iovlen = st->iov.size();
    auto* raw = st.get();
    return engine().io().submit(io_request::sendmsg(_fd->get(), &raw->msg)).then(
        [fd = _fd, st = std::move(st)](long n) {
          if (n < 0) {
            ++counters.datagram_errors;
            return make_exception_future<>(error_of(static_cast<int>(-n), "sendmsg"));
          }
          ++counters.datagrams_sent;
          return make_ready_future<>();
        });
  }

  future<udp_datagram> receive() override {
    if (_shared->closed) return make_exception_future<udp_datagram>(error_of(ECONNABORTED, "recvmsg"));
    struct state {
      temporary_buffer<char> buf;
      sockaddr_storage from{};
      iovec iov{};
      msghdr msg{};
    };
    auto st = std::make_unique<state>();
    try {
      st->buf = temporary_buffer<char>(udp_channel::datagram_max);
    } catch (...) {
      return make_exception_future<udp_datagram>(std::current_exception());
    }
    st->iov = iovec{st->buf.get_write(), st->buf.size()};
    st->msg.msg_name = &st->from;
    st->msg.msg_namelen = sizeof(st->from);
    st->msg.msg_iov = &st->iov;
    st->msg.msg_iovlen = 1;
    auto* raw = st.get();
    ++_shared->receives_pending;
    return engine().io().submit(io_request::recvmsg(_fd->get(), &raw->msg)).then(
        [shared = _shared, st = std::move(st)](long n) -> future<udp_datagram> {
          --shared->receives_pending;
          if (shared->closed) return make_exception_future<udp_datagram>(error_of(ECONNABORTED, "recvmsg"));
          if (n < 0) {
            ++counters.datagram_errors;
            return make_exception_future<udp_datagram>(error_of(static_cast<int>(-n), "recvmsg"));
          }
          ++counters.datagrams_received;
          st->buf.trim(static_cast<std::size_t>(n));
          return make_ready_future<udp_datagram>(udp_datagram{
              std::move(st->buf), socket_address(reinterpret_cast<sockaddr*>(&st->from), st->msg.msg_namelen)});
        });
  }

  socket_address local_address() const override { return address_of(_fd->get(), false); }

  void close() override {
    if (_shared->closed) return;
    _shared->closed = true;
    // A UDP socket's shutdown wakes nothing: cancel the pending receive.
    if (_shared->receives_pending > 0 && engine_is_ready()) engine().io().cancel(_fd->get());
  }

 private:
  struct shared {
    explicit shared(shared_fd f) noexcept : fd(std::move(f)) {}
    shared_fd fd;
    bool closed = false;
    unsigned receives_pending = 0;
  };
  lw_shared_ptr<shared> _shared;
  const shared_fd& _fd;
};

// --- The stack. -------------------------------------------------------------------

// The counters' metrics, registered while a POSIX stack lives on the shard.
thread_local unsigned stacks_here = 0;
thread_local metrics::metric_groups* counters_metrics = nullptr;

void register_counters() noexcept {
  try {
    auto m = std::make_unique<metrics::metric_groups>();
    auto& c = counters;
    m->add_group("net_posix",
                 {
                     metrics::make_counter("bytes_received_total", "Bytes received on TCP and Unix sockets.",
                                           c.bytes_received),
                     metrics::make_counter("bytes_sent_total", "Bytes sent on TCP and Unix sockets.", c.bytes_sent),
                     metrics::make_counter("receive_errors_total", "Receives that failed (not a reset or close).",
                                           c.receive_errors),
                     metrics::make_counter("send_errors_total", "Sends that failed.", c.send_errors),
                     metrics::make_counter("connections_accepted_total", "Connections accepted.",
                                           c.connections_accepted),
                     metrics::make_counter("accept_errors_total", "Accepts that failed.", c.accept_errors),
                     metrics::make_counter("connections_made_total", "Connections this shard made (connect).",
                                           c.connections_made),
                     metrics::make_counter("connect_errors_total", "Connects that failed, timed out or were aborted.",
                                           c.connect_errors),
                     metrics::make_counter("datagrams_received_total", "UDP datagrams received.",
                                           c.datagrams_received),
                     metrics::make_counter("datagrams_sent_total", "UDP datagrams sent.", c.datagrams_sent),
                     metrics::make_counter("datagram_errors_total", "UDP sends and receives that failed.",
                                           c.datagram_errors),
                 });
    counters_metrics = m.release();
  } catch (const std::exception& e) {
    posix_log().error("the POSIX stack's metrics are not registered: {}", e.what());
  }
}

class posix_network_stack final : public network_stack {
 public:
  posix_network_stack() noexcept {
    if (stacks_here++ == 0) register_counters();
  }
  ~posix_network_stack() override {
    if (--stacks_here == 0) {
      delete counters_metrics;
      counters_metrics = nullptr;
    }
  }
  posix_network_stack(const posix_network_stack&) = delete;
  posix_network_stack& operator=(const posix_network_stack&) = delete;

  const char* name() const noexcept override { return "posix"; }

  server_socket listen(const socket_address& address, const listen_options& options) override {
    if (options.balancing == load_balancing::kernel || smp::count == 1) {
      if (address.is_unix() && smp::count > 1 && this_shard_id() != 0) {
        // Only one socket can own a path: the other shards' binds fail.
        throw std::invalid_argument("listen on " + address.to_string() +
                                    ": the kernel does not share a Unix-domain socket among shards; use "
                                    "load_balancing::round_robin");
      }
      return server_socket(bind_and_listen(address, options, !address.is_unix()));
    }
    // Round robin: one socket, on shard 0; the group is found by address,
    // so the address must be known to every shard (no port 0).
    if (!address.is_unix() && address.port() == 0) {
      throw std::invalid_argument("listen: round-robin load balancing needs a fixed port");
    }
    std::unique_ptr<posix_server_socket> listener;
    if (this_shard_id() == 0) listener = bind_and_listen(address, options, false);
    return server_socket(std::make_unique<round_robin_member>(address, std::move(listener)));
  }

  future<connected_socket> connect(const socket_address& address, const connect_options& options) override {
    // What the connect needs while in flight, and what may end it early
    // (its timer, its abort): the first to finish wins.
    struct attempt {
      shared_fd fd;
      socket_address target;
      timer<lowres_clock> deadline;
      std::optional<abort_source::subscription> aborted;
      std::exception_ptr ended_early;  // timed_out_error or abort_requested_exception
    };
    lw_shared_ptr<attempt> a;
    try {
      if (options.local && options.local->family() != address.family()) {
        throw std::invalid_argument("connect to " + address.to_string() + " from " + options.local->to_string() +
                                    ": not the same address family");
      }
      if (options.abort != nullptr && options.abort->abort_requested()) throw abort_requested_exception();
      a = make_lw_shared<attempt>();
      a->fd = make_socket(address.family(), SOCK_STREAM);
      a->target = address;
      if (options.local) {
        if (!options.local->is_unix()) set_flag(a->fd->get(), SOL_SOCKET, SO_REUSEADDR, true, "setsockopt(SO_REUSEADDR)");
        if (::bind(a->fd->get(), options.local->as_sockaddr(), options.local->length()) < 0) {
          throw error_of(errno, "bind");
        }
      }
    } catch (...) {
      return make_exception_future<connected_socket>(std::current_exception());
    }
    // Ending early cancels the connect in the backend; its completion then
    // says which way it ended.
    auto end_early = [raw = a.get()](std::exception_ptr why) {
      if (raw->ended_early) return;
      raw->ended_early = std::move(why);
      engine().io().cancel(raw->fd->get());
    };
    if (options.timeout) {
      a->deadline.set_callback([end_early] { end_early(std::make_exception_ptr(timed_out_error())); });
      a->deadline.arm(lowres_clock::now() + *options.timeout);
    }
    if (options.abort != nullptr) {
      a->aborted = options.abort->subscribe([end_early] { end_early(std::make_exception_ptr(abort_requested_exception())); });
    }
    return engine()
        .io()
        .submit(io_request::connect(a->fd->get(), a->target.as_sockaddr(), a->target.length()))
        .then([a](long rc) -> future<connected_socket> {
          a->deadline.cancel();
          a->aborted.reset();
          if (a->ended_early) {
            ++counters.connect_errors;
            return make_exception_future<connected_socket>(a->ended_early);
          }
          if (rc < 0) {
            ++counters.connect_errors;
            return make_exception_future<connected_socket>(error_of(static_cast<int>(-rc), "connect"));
          }
          ++counters.connections_made;
          return make_ready_future<connected_socket>(connected_socket(std::make_unique<posix_connected_socket>(a->fd)));
        });
  }

  udp_channel make_udp_channel(const socket_address& local) override {
    if (local.is_unix()) throw std::invalid_argument("a UDP channel on " + local.to_string() + ": not an IP address");
    shared_fd fd = make_socket(local.family(), SOCK_DGRAM);
    if (::bind(fd->get(), local.as_sockaddr(), local.length()) < 0) throw error_of(errno, "bind");
    return udp_channel(std::make_unique<posix_udp_channel>(std::move(fd)));
  }

 private:
  static std::unique_ptr<posix_server_socket> bind_and_listen(const socket_address& address,
                                                              const listen_options& options,
                                                              bool reuse_port) {
    shared_fd fd = make_socket(address.family(), SOCK_STREAM);
    if (options.reuse_address) set_flag(fd->get(), SOL_SOCKET, SO_REUSEADDR, true, "setsockopt(SO_REUSEADDR)");
    if (reuse_port) set_flag(fd->get(), SOL_SOCKET, SO_REUSEPORT, true, "setsockopt(SO_REUSEPORT)");
    if (::bind(fd->get(), address.as_sockaddr(), address.length()) < 0) throw error_of(errno, "bind");
    if (::listen(fd->get(), options.backlog) < 0) throw error_of(errno, "listen");
    return std::make_unique<posix_server_socket>(std::move(fd));
  }
};

struct registration {
  registration() {
    register_network_stack("posix", [] { return make_posix_network_stack(); });
  }
} registered;

}  // namespace

std::unique_ptr<network_stack> make_posix_network_stack() {
  return std::make_unique<posix_network_stack>();
}

}  // namespace reef
