// tap_device against the kernel: the test process moves into a network
// namespace of its own before main() (so the interface and every frame
// stay in it, and go with the process however it ends), makes a TAP
// there, and has the kernel send UDP datagrams out of it to a neighbour
// that is the queue. On io_uring the ring reads the frames (multishot):
// small ones are copied out of its buffers, larger ones lent until half
// of the shard's buffers are; when another user holds
// every buffer the queue reads by itself, and goes back to the ring once
// buffers return. Every frame arrives, in order, whole, on both
// backends.
//
// Needs root (a namespace, a TAP): the tests and CI run as root.
#include "tcpip/tap_device.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef::tcpip {
namespace {

using namespace std::chrono_literals;

// Before main(), on the only thread: every thread made later (the
// reactor's helpers) starts in the namespace too.
const int netns_error = ::unshare(CLONE_NEWNET) == 0 ? 0 : errno;

constexpr const char* tap_name = "rtaptest";
constexpr std::size_t headers = 14 + 20 + 8;  // Ethernet, IPv4, UDP

// Whether the ring reads the TAP for the queue (io_uring, Linux 6.8).
bool ring_reads() { return engine().io().supports_read_multishot(); }

// The shard's multishot buffers held by temporary_buffers.
unsigned buffers_out() { return engine().io().multishot_buffers() - engine().io().multishot_buffers_free(); }

// Holds what a multishot receive delivers.
struct holding_receiver final : multishot_receiver {
  std::vector<temporary_buffer<char>> held;
  bool ended = false;
  long last = 0;
  void on_result(long result, temporary_buffer<char> data, bool more) noexcept override {
    if (!data.empty()) held.push_back(std::move(data));
    last = result;
    ended = !more;
  }
};

// Takes every buffer of the shard's pool: one byte at a time through a
// socket pair, each arrival a buffer held, until the pool runs dry.
future<bool> drain_pool(int fds[2], holding_receiver& r) {
  if (!engine().io().recv_multishot(fds[0], r)) co_return false;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!r.ended && std::chrono::steady_clock::now() < until) {
    const std::size_t before = r.held.size();
    if (::write(fds[1], "x", 1) != 1) co_return false;
    while (r.held.size() == before && !r.ended && std::chrono::steady_clock::now() < until) co_await sleep(50us);
  }
  co_return r.ended && r.last == -ENOBUFS && engine().io().multishot_buffers_free() == 0;
}

unsigned open_descriptors() {
  unsigned n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// The interface up with 10.77.0.1/24, and 10.77.0.2 (the queue) a
// permanent neighbour; no IPv6, so nothing else leaves by it.
bool set_up_interface() {
  const std::string ip = "/usr/sbin/ip";
  const std::string script = "echo 1 > /proc/sys/net/ipv6/conf/" + std::string(tap_name) + "/disable_ipv6; " + ip +
                             " link set " + tap_name + " up && " + ip + " addr add 10.77.0.1/24 dev " + tap_name +
                             " && " + ip + " neigh add 10.77.0.2 lladdr 02:52:45:45:46:01 dev " + tap_name +
                             " nud permanent";
  return std::system(script.c_str()) == 0;
}

// Sends datagrams numbered [first, first + count) of `size` bytes to the
// queue; each is one frame out of the TAP.
bool send_datagrams(int sock, unsigned first, unsigned count, std::size_t size) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  ::inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
  std::string payload(size, 'p');
  for (unsigned i = first; i < first + count; ++i) {
    std::memcpy(payload.data(), &i, sizeof(i));
    if (::sendto(sock, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) !=
        static_cast<ssize_t>(size)) {
      ADD_FAILURE() << "sendto: " << std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Takes frames from `queue` into `held` until `count` of our datagrams
// have come (others, if any, are left aside) or two seconds pass.
future<bool> collect(device_queue& queue, std::vector<received_frame>& held, std::size_t count, std::size_t size) {
  const auto until = std::chrono::steady_clock::now() + 2s;
  std::vector<received_frame> in;
  while (held.size() < count && std::chrono::steady_clock::now() < until) {
    in.clear();
    queue.receive(in, 64);
    for (auto& f : in) {
      if (f.frame.len() == headers + size) held.push_back(std::move(f));
    }
    if (in.empty()) co_await sleep(100us);
  }
  co_return held.size() >= count;
}

// Each of `held` is our datagram number first + its index, whole.
void expect_in_order(std::vector<received_frame>& held, unsigned first, std::size_t size) {
  for (std::size_t i = 0; i < held.size(); ++i) {
    packet copy = held[i].frame.share();
    temporary_buffer<char> bytes = std::move(copy).linearize();
    unsigned number = 0;
    std::memcpy(&number, bytes.get() + headers, sizeof(number));
    EXPECT_EQ(number, first + i) << "frame " << i;
    EXPECT_EQ(std::string_view(bytes.get() + headers + sizeof(number), size - sizeof(number)),
              std::string(size - sizeof(number), 'p'))
        << "frame " << i;
    if (number != first + i) return;
  }
}

REEF_TEST(tap_device, every_frame_arrives_whether_the_ring_lends_copies_or_runs_dry) {
  if (netns_error != 0) {
    ADD_FAILURE() << "a network namespace of our own (needs root): " << std::strerror(netns_error);
    co_return;
  }
  tap_device tap({.name = tap_name});
  EXPECT_TRUE(set_up_interface());
  auto queue = tap.open_queue(0);
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REEF_ASSERT(sock >= 0);
  const unsigned pool = engine().io().multishot_buffers();
  unsigned next = 0;  // the next datagram's number

  // Small frames: copied out, no buffer of the pool held.
  {
    std::vector<received_frame> held;
    EXPECT_TRUE(send_datagrams(sock, next, 50, 100));
    EXPECT_TRUE(co_await collect(*queue, held, 50, 100)) << held.size() << " of 50 small frames";
    expect_in_order(held, next, 100);
    next += 50;
    EXPECT_EQ(buffers_out(), 0u) << "small frames are copied";
  }

  // Larger frames held: lent until half the pool is, then copied; none
  // lost.
  const unsigned many = pool > 0 ? pool : 300;
  {
    std::vector<received_frame> held;
    for (unsigned sent = 0; sent < many; sent += 50) {
      const unsigned n = std::min(50u, many - sent);
      EXPECT_TRUE(send_datagrams(sock, next + sent, n, 1000));
      if (!co_await collect(*queue, held, sent + n, 1000)) break;
      if (sent == 0 && ring_reads()) EXPECT_EQ(buffers_out(), 50u) << "the first are lent";
    }
    EXPECT_EQ(held.size(), many);
    expect_in_order(held, next, 1000);
    next += many;
    if (ring_reads()) EXPECT_EQ(buffers_out(), pool / 2) << "lent up to half the pool, copied beyond";
  }
  EXPECT_EQ(buffers_out(), 0u) << "all back once released";

  // The pool dry (another user holds every buffer): the queue reads by
  // itself, and the ring lends again once buffers return.
  if (ring_reads()) {
    int fds[2];
    REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    holding_receiver hog;
    EXPECT_TRUE(co_await drain_pool(fds, hog)) << "the pool drained: " << hog.held.size() << " buffers held";
    std::vector<received_frame> held;
    for (unsigned sent = 0; sent < 200; sent += 50) {
      EXPECT_TRUE(send_datagrams(sock, next + sent, 50, 1000));
      if (!co_await collect(*queue, held, sent + 50, 1000)) break;
    }
    EXPECT_EQ(held.size(), 200u) << "read with the pool dry";
    expect_in_order(held, next, 1000);
    next += 200;
    hog.held.clear();
    EXPECT_EQ(buffers_out(), 0u);
    held.clear();
    // At once, or after the queue's own reads of what came while it was dry.
    EXPECT_TRUE(send_datagrams(sock, next, 10, 1000));
    EXPECT_TRUE(co_await collect(*queue, held, 10, 1000)) << held.size() << " of 10";
    EXPECT_TRUE(send_datagrams(sock, next + 10, 10, 1000));
    EXPECT_TRUE(co_await collect(*queue, held, 20, 1000)) << held.size() << " of 20";
    expect_in_order(held, next, 1000);
    next += 20;
    EXPECT_GE(buffers_out(), 10u) << "lent by the ring again";
    ::close(fds[0]);
    ::close(fds[1]);
  }
  EXPECT_EQ(queue->stats().rx_frames >= next, true) << queue->stats().rx_frames << " frames of " << next;
  EXPECT_EQ(queue->stats().rx_dropped, 0u);

  // Closing the queue while the ring reads for it: the read ends, and the
  // descriptor is closed once it has.
  const unsigned descriptors = open_descriptors();
  queue.reset();
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (open_descriptors() >= descriptors && std::chrono::steady_clock::now() < until) co_await sleep(1ms);
  EXPECT_EQ(open_descriptors(), descriptors - 1) << "the queue's descriptor is closed";
  ::close(sock);
}

}  // namespace
}  // namespace reef::tcpip
