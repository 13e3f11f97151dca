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
#include <optional>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

#include "core/do_with.h"
#include "core/loop.h"
#include "core/queue.h"
#include "core/reactor.h"
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

using shared_fd = std::shared_ptr<posix_fd>;

shared_fd make_socket(int family, int type) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw error_of(errno, "socket");
  return std::make_shared<posix_fd>(fd);
}

socket_address address_of(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc < 0) return socket_address();
  return socket_address(reinterpret_cast<sockaddr*>(&ss), len);
}

bool get_flag(int fd, int level, int option) {
  int value = 0;
  socklen_t len = sizeof(value);
  ::getsockopt(fd, level, option, &value, &len);
  return value != 0;
}

void set_flag(int fd, int level, int option, bool on, const char* call) {
  int value = on ? 1 : 0;
  if (::setsockopt(fd, level, option, &value, sizeof(value)) < 0) throw error_of(errno, call);
}

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
          buf.trim(static_cast<std::size_t>(n));
          return make_ready_future<temporary_buffer<char>>(std::move(buf));
        }
        if (ends_stream(n)) return make_ready_future<temporary_buffer<char>>();
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
  // Outlives the source while the receive is in flight (its receiver).
  // The receive is idle (!_armed), running (_armed), or ending (_armed and
  // _cancelling: a last result will come). Bytes wait in _ready, in order;
  // at most one read waits in _reader; _eof and _error are final. Once the
  // source is gone (_orphaned) results are dropped and the last one
  // deletes this.
  class state final : public multishot_receiver {
   public:
    explicit state(shared_fd fd) noexcept : _fd(std::move(fd)) {}

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

    // The source is gone: end the receive, then this.
    void release() noexcept {
      _orphaned = true;
      _ready.clear();
      if (!_armed) {
        delete this;
        return;
      }
      if (!_cancelling) _cancelling = engine().io().cancel_multishot(*this);
    }

    void on_result(long result, temporary_buffer<char> data, bool more) noexcept override {
      if (!more) {
        _armed = false;
        _cancelling = false;
      }
      if (_orphaned) {
        if (!_armed) {
          delete this;
        } else if (!_cancelling) {
          _cancelling = engine().io().cancel_multishot(*this);  // it failed before
        }
        return;
      }
      if (result > 0) {
        _ready.push_back(std::move(data));
      } else if (result == 0 || ends_stream(result)) {
        _eof = true;
      } else if (result != -ENOBUFS && result != -ECANCELED) {
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
      if (_armed && !_cancelling && _ready.size() >= ready_max) {
        _cancelling = engine().io().cancel_multishot(*this);  // (tried again at the next result)
      }
    }

   private:
    bool arm() noexcept {
      _armed = engine().io().recv_multishot(_fd->get(), *this);
      return _armed;
    }

    shared_fd _fd;  // the descriptor stays open while the receive runs
    std::deque<temporary_buffer<char>> _ready;
    std::optional<promise<temporary_buffer<char>>> _reader;
    std::exception_ptr _error;
    bool _eof = false;
    bool _armed = false;
    bool _cancelling = false;
    bool _orphaned = false;
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
              if (n < 0) return make_exception_future<stop_iteration>(error_of(static_cast<int>(-n), "send"));
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
          if (n < 0) return make_exception_future<stop_iteration>(error_of(static_cast<int>(-n), "sendmsg"));
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
  socket_address local_address() const override { return address_of(_fd->get(), false); }
  socket_address remote_address() const override { return address_of(_fd->get(), true); }

 private:
  shared_fd _fd;
};

connected_socket make_connected(int fd) {
  return connected_socket(std::make_unique<posix_connected_socket>(std::make_shared<posix_fd>(fd)));
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
// backlog). Outlives its socket while the operation is in flight. The
// operation's states are those of multishot_source::state; _aborted (after
// abort_accept()) closes whatever still arrives, and _error holds a failure
// for the next accept() to report.
class multishot_acceptor final : public multishot_receiver {
 public:
  static constexpr std::size_t ready_max = 64;

  explicit multishot_acceptor(shared_fd fd) noexcept : _fd(std::move(fd)) {}

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

  // The socket is gone: end the operation, then this.
  void release() noexcept {
    _orphaned = true;
    for (int fd : _ready) ::close(fd);
    _ready.clear();
    if (!_armed) {
      delete this;
      return;
    }
    if (!_cancelling) _cancelling = engine().io().cancel_multishot(*this);
  }

  void on_result(long result, temporary_buffer<char>, bool more) noexcept override {
    if (!more) {
      _armed = false;
      _cancelling = false;
    }
    if (_orphaned || _aborted) {
      if (result >= 0) ::close(static_cast<int>(result));
      if (_orphaned && !_armed) {
        delete this;
      } else if (_orphaned && !_cancelling) {
        _cancelling = engine().io().cancel_multishot(*this);  // it failed before
      }
      return;
    }
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
    if (_armed && !_cancelling && _ready.size() >= ready_max) {
      _cancelling = engine().io().cancel_multishot(*this);
    }
  }

 private:
  bool arm() noexcept {
    _armed = engine().io().accept_multishot(_fd->get(), *this);
    return _armed;
  }

  shared_fd _fd;
  std::deque<int> _ready;
  std::optional<promise<accepted_fd>> _reader;
  int _error = 0;
  bool _armed = false;
  bool _cancelling = false;
  bool _aborted = false;
  bool _orphaned = false;
};

// Accepts on a socket of this shard.
class posix_server_socket final : public server_socket_impl {
 public:
  explicit posix_server_socket(shared_fd fd) : _fd(std::move(fd)) {
    if (engine().io().supports_multishot()) _acceptor = new multishot_acceptor(_fd);
  }
  ~posix_server_socket() override {
    if (_acceptor != nullptr) _acceptor->release();
  }
  posix_server_socket(const posix_server_socket&) = delete;
  posix_server_socket& operator=(const posix_server_socket&) = delete;

  // The next connection's descriptor (the caller owns it).
  future<accepted_fd> accept_fd() {
    if (_aborted) return make_exception_future<accepted_fd>(error_of(ECONNABORTED, "accept"));
    if (_acceptor != nullptr) {
      if (auto f = _acceptor->accept()) return std::move(*f);
    }
    struct peer {
      sockaddr_storage address{};
      socklen_t length = sizeof(sockaddr_storage);
    };
    auto p = std::make_unique<peer>();
    auto* raw = p.get();
    return engine()
        .io()
        .submit(io_request::accept(_fd->get(), reinterpret_cast<sockaddr*>(&raw->address), &raw->length))
        .then([this, fd = _fd, p = std::move(p)](long rc) -> future<accepted_fd> {
          if (rc < 0 || _aborted) {
            if (rc >= 0) ::close(static_cast<int>(rc));
            int err = _aborted || rc == -EINVAL ? ECONNABORTED : static_cast<int>(-rc);
            return make_exception_future<accepted_fd>(error_of(err, "accept"));
          }
          return make_ready_future<accepted_fd>(accepted_fd{
              static_cast<int>(rc), socket_address(reinterpret_cast<sockaddr*>(&p->address), p->length)});
        });
  }

  future<accept_result> accept() override {
    return accept_fd().then([](accepted_fd a) {
      return accept_result{make_connected(a.fd), a.peer};
    });
  }

  void abort_accept() override {
    _aborted = true;
    // The pending accept fails (EINVAL after the shutdown, or ECANCELED).
    ::shutdown(_fd->get(), SHUT_RDWR);
    engine().io().cancel(_fd->get());
    if (_acceptor != nullptr) _acceptor->abort();
  }

  socket_address local_address() const override { return address_of(_fd->get(), false); }

 private:
  shared_fd _fd;
  multishot_acceptor* _acceptor = nullptr;  // where the backend has multishot
  bool _aborted = false;
};

// load_balancing::round_robin: shard 0's socket accepts; each listening
// shard waits on an inbox that shard 0 fills in turn. The groups are
// process-wide, by port; a shard's member is found again (under the lock)
// when its connection arrives, so a member gone meanwhile is never touched.
class round_robin_member;

struct round_robin_group {
  std::vector<std::pair<unsigned, round_robin_member*>> members;
  std::size_t next = 0;
};

std::mutex round_robin_mutex;
std::map<std::uint16_t, round_robin_group>& round_robin_groups() {
  static auto* groups = new std::map<std::uint16_t, round_robin_group>();
  return *groups;
}

class round_robin_member final : public server_socket_impl {
 public:
  // Connections waiting to be accepted on this shard, at most (more are
  // refused: closed at once).
  static constexpr std::size_t inbox_max = 1024;

  // `listener` is shard 0's socket; null on the other shards.
  round_robin_member(std::uint16_t port, std::unique_ptr<posix_server_socket> listener)
      : _port(port), _listener(std::move(listener)), _inbox(inbox_max) {
    std::lock_guard lock(round_robin_mutex);
    round_robin_groups()[_port].members.emplace_back(this_shard_id(), this);
  }

  ~round_robin_member() override {
    {
      std::lock_guard lock(round_robin_mutex);
      auto& groups = round_robin_groups();
      auto& m = groups[_port].members;
      m.erase(std::remove_if(m.begin(), m.end(), [this](auto& e) { return e.second == this; }), m.end());
      if (m.empty()) groups.erase(_port);
    }
    while (!_inbox.empty()) {
      int fd = _inbox.pop().fd;
      if (fd >= 0) ::close(fd);
    }
  }

  future<accept_result> accept() override {
    if (_aborted) return make_exception_future<accept_result>(error_of(ECONNABORTED, "accept"));
    if (_listener && !_loop_started) start_loop();
    return _inbox.pop_eventually().then([](accepted_fd a) -> future<accept_result> {
      if (a.fd < 0) return make_exception_future<accept_result>(error_of(ECONNABORTED, "accept"));
      return make_ready_future<accept_result>(accept_result{make_connected(a.fd), a.peer});
    });
  }

  void abort_accept() override {
    if (_aborted) return;
    _aborted = true;
    if (_listener) _listener->abort_accept();
    deliver(accepted_fd{-1, socket_address()});
  }

  socket_address local_address() const override {
    return socket_address(inet_address(), _port);
  }

  // On this member's shard: a connection for it (fd -1: stop).
  void deliver(accepted_fd a) {
    if (!_inbox.push(std::move(a)) && a.fd >= 0) ::close(a.fd);  // full: refused
  }

 private:
  // Shard 0: accepts and hands out in turn, until aborted.
  void start_loop() {
    _loop_started = true;
    (void)keep_doing([this] {
      return _listener->accept_fd().then([this](accepted_fd a) { hand_out(a); });
    }).handle_exception([](std::exception_ptr) {});
  }

  void hand_out(accepted_fd a) {
    unsigned shard;
    {
      std::lock_guard lock(round_robin_mutex);
      auto& g = round_robin_groups()[_port];
      shard = g.members[g.next++ % g.members.size()].first;  // this one is a member
    }
    if (shard == this_shard_id()) {
      deliver(a);
      return;
    }
    std::uint16_t port = _port;
    (void)smp::submit_to(shard, [a, port] {
      std::lock_guard lock(round_robin_mutex);
      auto groups = round_robin_groups().find(port);
      if (groups != round_robin_groups().end()) {
        for (auto& [s, member] : groups->second.members) {
          if (s == this_shard_id()) {
            member->deliver(a);
            return;
          }
        }
      }
      ::close(a.fd);  // nobody listens there any more
    }).handle_exception([fd = a.fd](std::exception_ptr) {
      ::close(fd);  // the message was refused (shutting down)
    });
  }

  std::uint16_t _port;
  std::unique_ptr<posix_server_socket> _listener;  // shard 0 only
  queue<accepted_fd> _inbox;
  bool _loop_started = false;
  bool _aborted = false;
};

// --- UDP. -----------------------------------------------------------------------------

class posix_udp_channel final : public udp_channel_impl {
 public:
  explicit posix_udp_channel(shared_fd fd) noexcept : _fd(std::move(fd)) {}

  future<> send(const socket_address& destination, packet p) override {
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
          if (n < 0) return make_exception_future<>(error_of(static_cast<int>(-n), "sendmsg"));
          return make_ready_future<>();
        });
  }

  future<udp_datagram> receive() override {
    if (_closed) return make_exception_future<udp_datagram>(error_of(ECONNABORTED, "recvmsg"));
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
    return engine().io().submit(io_request::recvmsg(_fd->get(), &raw->msg)).then(
        [this, fd = _fd, st = std::move(st)](long n) -> future<udp_datagram> {
          if (_closed) return make_exception_future<udp_datagram>(error_of(ECONNABORTED, "recvmsg"));
          if (n < 0) return make_exception_future<udp_datagram>(error_of(static_cast<int>(-n), "recvmsg"));
          st->buf.trim(static_cast<std::size_t>(n));
          return make_ready_future<udp_datagram>(udp_datagram{
              std::move(st->buf), socket_address(reinterpret_cast<sockaddr*>(&st->from), st->msg.msg_namelen)});
        });
  }

  socket_address local_address() const override { return address_of(_fd->get(), false); }

  void close() override {
    _closed = true;
    // A UDP socket's shutdown wakes nothing: cancel the pending receive.
    engine().io().cancel(_fd->get());
  }

 private:
  shared_fd _fd;
  bool _closed = false;
};

// --- The stack. -------------------------------------------------------------------

class posix_network_stack final : public network_stack {
 public:
  const char* name() const noexcept override { return "posix"; }

  server_socket listen(const socket_address& address, const listen_options& options) override {
    if (options.balancing == load_balancing::kernel || smp::count == 1) {
      return server_socket(bind_and_listen(address, options, true));
    }
    // Round robin: one socket, on shard 0; the group is found by port, so
    // the port must be known to every shard (no port 0).
    if (address.port() == 0) {
      throw std::invalid_argument("listen: round-robin load balancing needs a fixed port");
    }
    std::unique_ptr<posix_server_socket> listener;
    if (this_shard_id() == 0) listener = bind_and_listen(address, options, false);
    return server_socket(std::make_unique<round_robin_member>(address.port(), std::move(listener)));
  }

  future<connected_socket> connect(const socket_address& address) override {
    shared_fd fd;
    try {
      fd = make_socket(address.family(), SOCK_STREAM);
    } catch (...) {
      return make_exception_future<connected_socket>(std::current_exception());
    }
    auto target = std::make_unique<socket_address>(address);
    auto* raw = target.get();
    return engine().io().submit(io_request::connect(fd->get(), raw->as_sockaddr(), raw->length())).then(
        [fd, target = std::move(target)](long rc) -> future<connected_socket> {
          if (rc < 0) return make_exception_future<connected_socket>(error_of(static_cast<int>(-rc), "connect"));
          return make_ready_future<connected_socket>(
              connected_socket(std::make_unique<posix_connected_socket>(fd)));
        });
  }

  udp_channel make_udp_channel(const socket_address& local) override {
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
