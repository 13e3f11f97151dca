#include "tcpip/tap_device.h"

#include <fcntl.h>
#include <poll.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <system_error>

#include "core/assert.h"
#include "core/log.h"
#include "core/lw_shared_ptr.h"
#include "core/small_vector.h"
#include "core/reactor.h"
#include "core/sleep.h"

namespace reef::tcpip {

namespace {

logger tap_log("tap");

// The virtio-net header in front of every frame (linux/virtio_net.h,
// which C++ cannot include), in the host's byte order (a TAP's default).
struct virtio_net_hdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == 10);
constexpr std::uint8_t vnet_needs_checksum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr std::uint8_t vnet_data_valid = 2;      // VIRTIO_NET_HDR_F_DATA_VALID
constexpr std::uint8_t vnet_gso_tcpv4 = 1;       // VIRTIO_NET_HDR_GSO_TCPV4
constexpr unsigned tun_offload_checksum = 0x01;  // TUN_F_CSUM

// The header that asks the kernel for what `offload` says: to finish the
// TCP/UDP checksum (its field holds the pseudo header's sum), and to cut
// a TCP segment into pieces (TSO).
virtio_net_hdr header_for(const tx_frame& f) noexcept {
  virtio_net_hdr h{};
  const tx_offload& o = f.offload;
  if (o.l4_checksum) {
    h.flags = vnet_needs_checksum;
    h.csum_start = static_cast<std::uint16_t>(o.l2_length + o.l3_length);
    h.csum_offset = o.l4_checksum_at;
  }
  if (o.segment_size != 0) {
    h.gso_type = vnet_gso_tcpv4;
    h.gso_size = o.segment_size;
    h.hdr_len = static_cast<std::uint16_t>(o.l2_length + o.l3_length + o.l4_length);
  }
  return h;
}

constexpr std::size_t vnet_header_size = sizeof(virtio_net_hdr);

// Frames read and not yet taken by receive(), per queue, at most.
constexpr std::size_t ready_max = 1024;

std::system_error os_error(int code, const std::string& what) {
  return std::system_error(code, std::system_category(), what);
}

// One queue's descriptor, and the I/O in flight on it. Shared by the
// queue and its operations' continuations: the descriptor is closed when
// the last of them lets go, so nothing in flight ever meets a closed or
// reused number.
//
// Where the ring reads for us (read_multishot), the state is its
// receiver too, and keeps itself alive (`self`) until the operation's
// last call.
struct tap_state final : multishot_receiver {
  tap_state(int f, std::size_t max) : fd(f), frame_max(max) {}
  ~tap_state() { ::close(fd); }
  void on_result(long result, temporary_buffer<char> data, bool more) noexcept override;
  int fd;
  std::size_t frame_max;  // the largest frame read (without the virtio-net header)
  bool multishot = false;  // the ring reads for us when it can
  lw_shared_ptr<tap_state> self;  // while the ring reads for us
  bool closed = false;
  unsigned reads = 0;
  unsigned writes = 0;
  std::deque<received_frame> ready;
  noncopyable_function<void()> notify;
  device_queue_stats* stats = nullptr;  // the queue's, while it lives
  std::uint64_t read_errors = 0;
  unsigned read_batch = 64;  // frames read per readiness (io_uring)
};

// A frame being written: the header, the iovecs and what keeps the bytes.
struct pending_write {
  virtio_net_hdr header{};
  std::vector<iovec> iov;
  packet frame;
};

class tap_queue final : public device_queue {
 public:
  // `direct` (io_uring): the descriptor does not block; the ring reads
  // frames for us where it can (multishot), else says when the queue is
  // readable and we read; frames are written by system calls (see
  // tap_device::open_queue). Otherwise (epoll) every read and write goes
  // through the backend.
  tap_queue(int fd, std::size_t frame_max, const tap_options& options, bool direct)
      : _state(make_lw_shared<tap_state>(fd, frame_max)), _options(options), _direct(direct) {
    _state->stats = &_stats;
    _state->read_batch = _options.reads_in_flight;
    if (_direct) {
      // A frame and its header must fit one of the ring's buffers.
      _state->multishot = engine().io().supports_read_multishot() &&
                          engine().io().multishot_buffer_size() > vnet_header_size + frame_max;
      listen(_state);
    } else {
      for (unsigned i = 0; i < _options.reads_in_flight; ++i) start_read(_state, frame_max);
    }
  }

  ~tap_queue() override {
    _state->closed = true;
    _state->stats = nullptr;
    _state->notify = {};
    _state->ready.clear();
    engine().io().cancel(_state->fd);
  }

  std::size_t receive(std::vector<received_frame>& out, std::size_t max) override {
    std::size_t n = 0;
    while (n < max && !_state->ready.empty()) {
      out.push_back(std::move(_state->ready.front()));
      _state->ready.pop_front();
      ++n;
    }
    return n;
  }

  std::size_t transmit(std::span<tx_frame> frames) override {
    if (_direct) return transmit_now(frames);
    std::size_t taken = 0;
    for (auto& f : frames) {
      if (_state->writes >= _options.writes_in_flight) break;
      auto w = std::make_unique<pending_write>();
      w->header = header_for(f);
      w->iov.reserve(1 + f.frame.nr_frags());
      w->iov.push_back(iovec{&w->header, vnet_header_size});
      for (const fragment& piece : f.frame.fragments()) w->iov.push_back(iovec{piece.base, piece.size});
      const std::size_t bytes = f.frame.len();
      w->frame = std::move(f.frame);
      ++_state->writes;
      ++_stats.tx_frames;
      _stats.tx_bytes += bytes;
      pending_write* raw = w.release();
      (void)engine()
          .io()
          .submit(io_request::writev(_state->fd, raw->iov.data(), static_cast<int>(raw->iov.size())))
          .then([state = _state, raw](long rc) {
            std::unique_ptr<pending_write> done(raw);
            --state->writes;
            if (rc < 0 && rc != -ECANCELED && state->stats != nullptr) {
              ++state->stats->tx_refused;
              tap_log.debug("a frame was not written: {}", std::strerror(static_cast<int>(-rc)));
            }
          });
      ++taken;
    }
    _stats.tx_refused += frames.size() - taken;
    return taken;
  }

  void on_arrival(noncopyable_function<void()> notify) override { _state->notify = std::move(notify); }

 private:
  // Direct: a write system call per frame (a TAP takes a frame at once or
  // refuses it).
  std::size_t transmit_now(std::span<tx_frame> frames) {
    std::size_t taken = 0;
    for (auto& f : frames) {
      virtio_net_hdr header = header_for(f);
      small_vector<iovec, 4> iov;
      iov.push_back(iovec{&header, vnet_header_size});
      for (const fragment& piece : f.frame.fragments()) iov.push_back(iovec{piece.base, piece.size});
      const ssize_t rc = ::writev(_state->fd, iov.data(), static_cast<int>(iov.size()));
      if (rc < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;  // no room now
        tap_log.debug("a frame was not written: {}", std::strerror(errno));
      } else {
        ++_stats.tx_frames;
        _stats.tx_bytes += f.frame.len();
      }
      f.frame = packet();
      ++taken;
    }
    _stats.tx_refused += frames.size() - taken;
    return taken;
  }

  // Direct: has the ring read each frame as it comes where it can
  // (multishot: no system call per frame, nor one that finds the queue
  // empty), else waits for readiness and reads.
  static void listen(lw_shared_ptr<tap_state> state) noexcept {
    if (state->closed) return;
    if (state->multishot) {
      state->self = state;
      if (engine().io().read_multishot(state->fd, *state)) return;
      state->self = nullptr;
    }
    const std::size_t frame_max = state->frame_max;
    wait_readable(std::move(state), frame_max);
  }

  // A frame (`bytes` with its virtio-net header) that the ring read into
  // one of its buffers. Frames of up to copy_max bytes (acks, requests)
  // are copied out and the buffer goes back at once; larger ones go up in
  // it, lent, while half of the shard's pool is free (the frame's own
  // buffer counted as taken), so that at most half is lent: frames
  // that wait (a stopped stack, a slow reader) must not take the buffers
  // every other multishot operation of the shard receives into.
  static void take_lent(tap_state& state, temporary_buffer<char> data, std::size_t bytes) {
    constexpr std::size_t copy_max = 256;
    const auto& io = engine().io();
    if (bytes <= vnet_header_size + copy_max || io.multishot_buffers_free() < io.multishot_buffers() / 2) {
      data = temporary_buffer<char>(data.get(), bytes);
    }
    take(state, std::move(data), bytes, state.frame_max);
  }

  // After the ring's reads ended: `result` is the last.
  static void after_multishot(lw_shared_ptr<tap_state> state, long result) noexcept {
    if (state->closed || result == -ECANCELED) return;  // the queue or the reactor is stopping
    if (result > 0) {
      // Ended after a frame (the kernel's choice: a full completion ring,
      // or a read it would not repeat): start again.
      listen(std::move(state));
      return;
    }
    const std::size_t frame_max = state->frame_max;
    if (result == -ENOBUFS) {
      // The pool's buffers are all out: one batch read here, then the
      // ring again.
      wait_readable(std::move(state), frame_max);
      return;
    }
    // Refused or failed (the operation, the descriptor): read on
    // readiness from now on, starting a little later.
    state->multishot = false;
    if (state->read_errors++ % 1024 == 0) {
      tap_log.warn("the ring's reads of the TAP queue ended: {}; reading on readiness",
                   result < 0 ? std::strerror(static_cast<int>(-result)) : "end of file");
    }
    restart_later(std::move(state), frame_max, true);
  }

  friend struct tap_state;

  // Direct, without the ring's reads: waits until the descriptor is
  // readable, reads what is there (up to read_batch frames), and listens
  // again.
  static void wait_readable(lw_shared_ptr<tap_state> state, std::size_t frame_max) noexcept {
    if (state->closed) return;
    try {
      (void)engine().io().readiness(state->fd, POLLIN).then([state, frame_max](long rc) mutable {
        if (state->closed || rc == -ECANCELED) return;
        if (rc < 0) {
          if (state->read_errors++ % 1024 == 0) {
            tap_log.warn("waiting for the TAP queue failed: {}", std::strerror(static_cast<int>(-rc)));
          }
          restart_later(std::move(state), frame_max, true);
          return;
        }
        for (unsigned i = 0; i < state->read_batch; ++i) {
          temporary_buffer<char> buffer(vnet_header_size + frame_max);
          const ssize_t n = ::read(state->fd, buffer.get_write(), buffer.size());
          if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            // The interface went away: not a loop that spins on it.
            if (state->read_errors++ % 1024 == 0) tap_log.warn("reading the TAP queue failed: {}", std::strerror(errno));
            restart_later(std::move(state), frame_max, true);
            return;
          }
          if (n <= 0) break;  // drained
          take(*state, std::move(buffer), static_cast<std::size_t>(n), frame_max);
        }
        listen(std::move(state));
      });
    } catch (...) {
      ++state->read_errors;
      restart_later(std::move(state), frame_max, true);
    }
  }

  // Keeps one read in flight; its completion queues the frame and starts
  // the next. A read that fails (the interface went away, no memory)
  // starts again a little later: a queue never goes deaf for good.
  static void start_read(lw_shared_ptr<tap_state> state, std::size_t frame_max) noexcept {
    if (state->closed) return;
    try {
      temporary_buffer<char> buffer(vnet_header_size + frame_max);
      char* at = buffer.get_write();
      ++state->reads;
      (void)engine()
          .io()
          .submit(io_request::read(state->fd, at, buffer.size()))
          .then([state, frame_max, buffer = std::move(buffer)](long rc) mutable {
            --state->reads;
            if (state->closed || rc == -ECANCELED) return;  // the queue or the reactor is stopping
            if (rc < 0 && rc != -EAGAIN && rc != -EINTR) {
              if (state->read_errors++ % 1024 == 0) {
                tap_log.warn("reading the TAP queue failed: {}", std::strerror(static_cast<int>(-rc)));
              }
              restart_later(std::move(state), frame_max);
              return;
            }
            if (rc > 0) take(*state, std::move(buffer), static_cast<std::size_t>(rc), frame_max);
            start_read(std::move(state), frame_max);
          });
    } catch (...) {
      ++state->read_errors;
      restart_later(std::move(state), frame_max);
    }
  }

  static void restart_later(lw_shared_ptr<tap_state> state, std::size_t frame_max, bool direct = false) noexcept {
    try {
      (void)sleep(std::chrono::milliseconds(100)).then([state = std::move(state), frame_max, direct]() mutable {
        if (direct) {
          listen(std::move(state));
        } else {
          start_read(std::move(state), frame_max);
        }
      });
    } catch (...) {
      // No memory even for the timer: this read is lost (counted).
    }
  }

  // A frame of `bytes` (the virtio-net header first) read into `buffer`.
  static void take(tap_state& state, temporary_buffer<char> buffer, std::size_t bytes, std::size_t frame_max) {
    if (bytes <= vnet_header_size) return;
    if (bytes >= vnet_header_size + frame_max) {
      // It filled the buffer: the kernel may have cut it.
      if (state.stats != nullptr) ++state.stats->rx_dropped;
      return;
    }
    virtio_net_hdr header;
    std::memcpy(&header, buffer.get(), vnet_header_size);
    buffer.trim(bytes);
    buffer.trim_front(vnet_header_size);
    // Frames the kernel checked are good; so are the ones whose checksum
    // it left to us to finish (TUN_F_CSUM): its own stack's, which never
    // crossed a wire.
    const bool good = (header.flags & (vnet_data_valid | vnet_needs_checksum)) != 0;
    if (state.stats != nullptr) {
      ++state.stats->rx_frames;
      state.stats->rx_bytes += buffer.size();
    }
    // Frames nobody polls (a stopped stack) wait up to a bound.
    if (state.ready.size() >= ready_max) {
      if (state.stats != nullptr) ++state.stats->rx_dropped;
    } else {
      try {
        state.ready.push_back(received_frame{packet(std::move(buffer)), std::nullopt,
                                             good ? checksum_status::good : checksum_status::unknown});
      } catch (...) {
        if (state.stats != nullptr) ++state.stats->rx_dropped;
      }
    }
    if (state.notify) state.notify();
  }

  lw_shared_ptr<tap_state> _state;
  tap_options _options;
  bool _direct;
};

void tap_state::on_result(long result, temporary_buffer<char> data, bool more) noexcept {
  if (result > 0 && !closed) {
    try {
      tap_queue::take_lent(*this, std::move(data), static_cast<std::size_t>(result));
    } catch (...) {
      if (stats != nullptr) ++stats->rx_dropped;  // no memory for the copy
    }
  }
  if (more) return;
  // The operation's last call: let go of ourselves (perhaps the last
  // reference), then read on another way or stop.
  REEF_ASSERT(self != nullptr, "a multishot read of a TAP queue ended twice");
  tap_queue::after_multishot(std::move(self), result);
}

// Opens one queue of the interface.
int open_tap_queue(const std::string& name, bool multi_queue) {
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) throw os_error(errno, "TAP " + name + ": opening /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    const int e = errno;
    ::close(fd);
    throw os_error(e, "TAP " + name + ": attaching (TUNSETIFF)");
  }
  int header_size = vnet_header_size;
  // What the kernel may hand us: frames whose checksum it left undone
  // (taken as checked, above). Not segments longer than the MTU (TSO4):
  // each read would then need a 64 KiB buffer. What we hand it needs no
  // setting: it finishes checksums and cuts TSO segments as the header
  // asks.
  if (::ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0 || ::ioctl(fd, TUNSETOFFLOAD, tun_offload_checksum) < 0) {
    const int e = errno;
    ::close(fd);
    throw os_error(e, "TAP " + name + ": setting the virtio-net header");
  }
  return fd;
}

}  // namespace

tap_device::tap_device(tap_options options) : _options(std::move(options)) {
  if (_options.name.empty() || _options.name.size() >= IFNAMSIZ) {
    throw std::invalid_argument("TAP: an interface name of 1 to 15 bytes, not '" + _options.name + "'");
  }
  if (_options.queues == 0) throw std::invalid_argument("TAP " + _options.name + ": 0 queues");
  if (_options.reads_in_flight == 0 || _options.writes_in_flight == 0) {
    throw std::invalid_argument("TAP " + _options.name + ": no reads or writes in flight");
  }
  try {
    // A single-queue interface refuses IFF_MULTI_QUEUE: take it as it is
    // when one queue is asked for.
    try {
      _fds.push_back(open_tap_queue(_options.name, true));
    } catch (const std::system_error& e) {
      if (_options.queues != 1 || e.code().value() != EINVAL) throw;
      _fds.push_back(open_tap_queue(_options.name, false));
    }
    for (unsigned q = 1; q < _options.queues; ++q) _fds.push_back(open_tap_queue(_options.name, true));
    std::uint16_t mtu = 1500;
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s >= 0) {
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, _options.name.c_str(), IFNAMSIZ - 1);
      if (::ioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0 && ifr.ifr_mtu <= 65535) {
        mtu = static_cast<std::uint16_t>(ifr.ifr_mtu);
      }
      ::close(s);
    }
    _interface_mtu = mtu;
    if (_options.mtu) mtu = *_options.mtu;
    if (mtu < 68 || mtu > 9000) {
      throw std::invalid_argument("TAP " + _options.name + ": an MTU of " + std::to_string(mtu) +
                                  " (68 to 9000)");
    }
    _info.mac = _options.mac;
    _info.mtu = mtu;
    _info.queues = _options.queues;
    _info.rss_hash = false;
    _info.offloads.tx_checksum = true;
    _info.offloads.tso = true;
    _info.offloads.rx_checksum_verified = true;
  } catch (...) {
    for (int fd : _fds) ::close(fd);
    throw;
  }
}

tap_device::~tap_device() {
  for (int fd : _fds) {
    if (fd >= 0) ::close(fd);
  }
}

std::unique_ptr<device_queue> tap_device::open_queue(unsigned index) {
  if (index >= _fds.size() || _fds[index] < 0) {
    throw std::invalid_argument("TAP " + _options.name + ": queue " + std::to_string(index) +
                                " is not there or already open");
  }
  // On the driving shard. The descriptor does not block. On io_uring the
  // ring reads frames for us (multishot, where the kernel has it), or says
  // when the queue is readable and we read; frames are written directly.
  // (Single reads kept in flight in the ring were measured at 6 times
  // the round trip of reading on readiness, in
  // tools/bench/udp_echo_tap_vs_veth.sh; a multishot read needs no
  // submission per frame. On epoll the backend waits for readiness and
  // reads itself.)
  ::fcntl(_fds[index], F_SETFL, ::fcntl(_fds[index], F_GETFL) | O_NONBLOCK);
  const bool direct = std::string(engine().io().name()) != "epoll";
  // Room for the largest frame either side may send: the kernel's
  // interface may have a larger MTU than the stack uses (a frame that
  // fills the buffer is taken as cut, and dropped).
  const std::size_t frame_max = std::size_t{std::max(_info.mtu, _interface_mtu)} + 14 + 4 + 1;
  auto queue = std::make_unique<tap_queue>(_fds[index], frame_max, _options, direct);
  _fds[index] = -1;  // the queue's now
  return queue;
}

}  // namespace reef::tcpip
