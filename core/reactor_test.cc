// The reactor: tasks, timers, I/O on both backends, blocking calls,
// signals, wakeups, stalls and idleness. Runs once per backend (see BUILD).
#include "core/reactor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/coroutine.h"
#include "core/function.h"
#include "core/internal/helper_threads.h"
#include "core/internal/io_uring_backend.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sleep.h"
#include "core/testing/test.h"
#include "core/with_timeout.h"
#include "core/sanitizers.h"

// Busy for `ms` of CPU: a stall the watchdog must report. Not inlined, and
// with external linkage, so that it shows by name in the backtrace.
[[gnu::noinline]] void reef_test_busy_stall(int ms) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  volatile unsigned long spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
}

namespace reef {
namespace {

using namespace std::chrono_literals;

// A pipe whose ends close with the object.
struct test_pipe {
  test_pipe() {
    int fds[2];
    REEF_ASSERT(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~test_pipe() {
    ::close(read_fd);
    ::close(write_fd);
  }
  int read_fd;
  int write_fd;
};

// Process CPU time (user + system) from /proc/self/stat, in clock ticks.
long process_cpu_ticks() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after ')'.
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

REEF_TEST(reactor, runs_on_the_backend_it_was_asked_for) {
  EXPECT_STREQ(engine().io().name(), to_string(engine().options().backend));
  return make_ready_future<>();
}

TEST(reactor, at_destroy_runs_newest_first_while_the_backend_still_works) {
  std::vector<int> order;
  bool backend_worked = false;
  std::thread t([&] {
    reactor_options options;
    options.stop_on_sigint_sigterm = false;
    reactor r(options);
    r.at_destroy([&] { order.push_back(1); });
    r.at_destroy([&] {
      order.push_back(2);
      backend_worked = engine_is_ready() && std::string(engine().io().name()).size() > 0;
    });
  });
  t.join();
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  EXPECT_TRUE(backend_worked);
}

// The reactor's metrics: registered with it, moving as it works, gone
// with it.
namespace reactor_metrics {

double read(std::string_view name) {
  for (const auto& f : metrics::read_all(name)) {
    if (f.name == name && !f.samples.empty()) return f.samples[0].value;
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

}  // namespace reactor_metrics

REEF_TEST(reactor, metrics_move_as_it_works) {
  using reactor_metrics::read;
  const double tasks = read("reactor_tasks_run_total");
  for (int i = 0; i < 100; ++i) co_await yield();
  // (The count grows at the end of each batch of tasks: this one ends.)
  co_await sleep(std::chrono::milliseconds(1));
  EXPECT_GE(read("reactor_tasks_run_total"), tasks + 100);
  EXPECT_GT(read("reactor_polls_total"), 0);
  timer<> t([] {});
  const double timers = read("reactor_timers_pending");
  t.arm(std::chrono::hours(1));
  EXPECT_EQ(read("reactor_timers_pending"), timers + 1);
  t.cancel();
  // Asleep for most of 50 ms (nothing else runs on this reactor).
  const double slept = read("reactor_sleep_seconds_total");
  co_await sleep(std::chrono::milliseconds(50));
  EXPECT_GE(read("reactor_sleep_seconds_total") - slept, 0.02);
  EXPECT_GT(read("reactor_awake_seconds_total"), 0);
  // Two operations through the backend, one waiting for the other.
  const double submitted = read("reactor_io_submissions_total");
  const double completed = read("reactor_io_completions_total");
  test_pipe p;
  char in[4] = {};
  future<long> reading = engine().io().submit(io_request::read(p.read_fd, in, sizeof(in)));
  co_await sleep(std::chrono::milliseconds(1));
  EXPECT_EQ(read("reactor_io_submissions_total"), submitted + 1);
  EXPECT_EQ(read("reactor_io_completions_total"), completed);  // the read waits
  EXPECT_EQ(co_await engine().io().submit(io_request::write(p.write_fd, "ab", 2)), 2);
  EXPECT_EQ(co_await std::move(reading), 2);
  EXPECT_EQ(read("reactor_io_submissions_total"), submitted + 2);
  EXPECT_EQ(read("reactor_io_completions_total"), completed + 2);
}

TEST(reactor, its_metrics_go_with_it) {
  std::thread t([] {
    {
      reactor_options options;
      options.stop_on_sigint_sigterm = false;
      reactor r(options);
      EXPECT_FALSE(metrics::read_all("reactor_").empty());
    }
    EXPECT_TRUE(metrics::read_all("reactor_").empty());
    EXPECT_EQ(metrics::registered(), 0u);
  });
  t.join();
}

REEF_TEST(reactor, tasks_run_in_fifo_order) {
  auto order = std::make_shared<std::vector<int>>();
  promise<> done;
  auto f = done.get_future();
  for (int i = 0; i < 5; ++i) schedule(make_task([order, i] { order->push_back(i); }));
  schedule(make_task([&done] { done.set_value(); }));
  co_await std::move(f);
  EXPECT_EQ(*order, (std::vector<int>{0, 1, 2, 3, 4}));
}

REEF_TEST(reactor, timers_fire_in_deadline_order) {
  std::vector<int> order;
  timer<> a([&] { order.push_back(1); });
  timer<> b([&] { order.push_back(2); });
  timer<> c([&] { order.push_back(3); });
  auto now = steady_clock_type::now();
  c.arm(now + 3ms);
  a.arm(now + 1ms);
  b.arm(now + 2ms);
  EXPECT_TRUE(a.armed());
  co_await sleep(10ms);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(a.armed());
}

REEF_TEST(reactor, cancelled_timer_does_not_fire) {
  int fired = 0;
  timer<> t([&] { ++fired; });
  t.arm(1ms);
  EXPECT_TRUE(t.cancel());
  EXPECT_FALSE(t.cancel());
  co_await sleep(5ms);
  EXPECT_EQ(fired, 0);
}

REEF_TEST(reactor, rearm_moves_the_deadline) {
  std::vector<int> order;
  timer<> early([&] { order.push_back(1); });
  timer<> late([&] { order.push_back(2); });
  early.arm(1ms);
  late.arm(3ms);
  early.rearm(steady_clock_type::now() + 6ms);
  co_await sleep(10ms);
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
}

REEF_TEST(reactor, periodic_timer_fires_until_cancelled) {
  int fired = 0;
  promise<> third;
  auto f = third.get_future();
  timer<> t;
  t.set_callback([&] {
    if (++fired == 3) {
      t.cancel();
      third.set_value();
    }
  });
  t.arm_periodic(1ms);
  co_await std::move(f);
  co_await sleep(5ms);
  EXPECT_EQ(fired, 3);
}

REEF_TEST(reactor, a_callback_may_destroy_its_own_timer) {
  auto* t = new timer<>();
  promise<> done;
  auto f = done.get_future();
  t->set_callback([t, &done] {
    done.set_value();
    delete t;  // last: the callback's captures die with the timer
  });
  t->arm(1ms);
  co_await std::move(f);
}

REEF_TEST(reactor, lowres_timer_fires) {
  auto start = lowres_clock::now();
  co_await sleep<lowres_clock>(5ms);
  EXPECT_GE(lowres_clock::now() - start, 5ms);
}

REEF_TEST(reactor, sleep_waits_at_least_its_duration) {
  auto start = steady_clock_type::now();
  co_await sleep(20ms);
  EXPECT_GE(steady_clock_type::now() - start, 20ms);
}

REEF_TEST(reactor, with_timeout_passes_a_timely_value) {
  promise<int> p;
  auto f = with_timeout(steady_clock_type::now() + 1s, p.get_future());
  p.set_value(3);
  EXPECT_EQ(co_await std::move(f), 3);
}

REEF_TEST(reactor, with_timeout_fails_a_late_future) {
  promise<int> p;
  auto f = with_timeout(steady_clock_type::now() + 5ms, p.get_future());
  bool timed_out = false;
  try {
    co_await std::move(f);
  } catch (const timed_out_error&) {
    timed_out = true;
  }
  EXPECT_TRUE(timed_out);
  p.set_value(1);  // too late: dropped without complaint
}

REEF_TEST(reactor, idle_reactor_uses_almost_no_cpu) {
  long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  long before = process_cpu_ticks();
  co_await sleep(500ms);
  long used = process_cpu_ticks() - before;
  // 500 ms asleep: allow 5% (25 ms) for the wake-up and the measurement.
  EXPECT_LE(used * 1000 / ticks_per_second, 25) << "ticks used: " << used;
}

REEF_TEST(reactor, run_blocking_runs_elsewhere_and_returns_here) {
  auto reactor_thread = std::this_thread::get_id();
  auto pool_thread = co_await run_blocking([] { return std::this_thread::get_id(); });
  EXPECT_NE(pool_thread, reactor_thread);
  EXPECT_EQ(std::this_thread::get_id(), reactor_thread);
}

REEF_TEST(reactor, run_blocking_passes_exceptions) {
  auto f = run_blocking([]() -> int { throw std::runtime_error("in the pool"); });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
}

REEF_TEST(reactor, run_blocking_never_blocks_the_loop) {
  // The blocking call waits for a flag that only a task on the reactor sets:
  // if the loop waited for the call, this would never finish.
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto f = run_blocking([flag] {
    while (!flag->load()) std::this_thread::yield();
    return 7;
  });
  co_await sleep(1ms);
  flag->store(true);
  EXPECT_EQ(co_await std::move(f), 7);
}

TEST(reactor, signal_handler_runs_as_a_task_on_the_reactor) {
#if defined(REEF_TSAN)
  // ThreadSanitizer defers a signal until its thread calls an intercepted
  // function; a reactor asleep in io_uring_enter (a raw system call) never
  // does, and the signal is lost. The other builds run this test.
  GTEST_SKIP() << "signals are deferred under ThreadSanitizer";
#endif
  testing::run_in_reactor([]() -> future<> {
    auto reactor_thread = std::this_thread::get_id();
    promise<std::thread::id> ran_on;
    auto f = ran_on.get_future();
    engine().handle_signal(SIGUSR1, [&] { ran_on.set_value(std::this_thread::get_id()); });
    // Sent to the process by another thread while the reactor sleeps: the
    // reactor is woken. (The sender blocks it, so another thread takes it.)
    std::thread([] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      ::kill(::getpid(), SIGUSR1);
    }).join();
    EXPECT_EQ(co_await std::move(f), reactor_thread);
    engine().handle_signal(SIGUSR1, [] {});
  });
}

REEF_TEST(reactor, handle_signal_refuses_signals_it_cannot_handle) {
  EXPECT_THROW(engine().handle_signal(SIGKILL, [] {}), std::invalid_argument);
  EXPECT_THROW(engine().handle_signal(0, [] {}), std::invalid_argument);
  EXPECT_THROW(engine().handle_signal(1000, [] {}), std::invalid_argument);
  return make_ready_future<>();
}

// --- I/O through the backend. ---------------------------------------------

REEF_TEST(io, pipe_write_then_read) {
  test_pipe p;
  const char out[] = "hello";
  EXPECT_EQ(co_await engine().io().submit(io_request::write(p.write_fd, out, 5)), 5);
  char in[16] = {};
  EXPECT_EQ(co_await engine().io().submit(io_request::read(p.read_fd, in, sizeof(in))), 5);
  EXPECT_EQ(std::string(in, 5), "hello");
}

REEF_TEST(io, read_waits_for_data_that_comes_later) {
  test_pipe p;
  char in[8] = {};
  auto reading = engine().io().submit(io_request::read(p.read_fd, in, sizeof(in)));
  co_await sleep(2ms);
  EXPECT_FALSE(reading.available());
  const char out[] = "late";
  EXPECT_EQ(co_await engine().io().submit(io_request::write(p.write_fd, out, 4)), 4);
  EXPECT_EQ(co_await std::move(reading), 4);
  EXPECT_EQ(std::string(in, 4), "late");
}

REEF_TEST(io, cancel_completes_the_waiting_operations_of_one_descriptor) {
  test_pipe p;
  test_pipe other;
  char a[1], b[1], c[1];
  auto first = engine().io().submit(io_request::read(p.read_fd, a, 1));
  auto second = engine().io().submit(io_request::read(p.read_fd, b, 1));
  auto untouched = engine().io().submit(io_request::read(other.read_fd, c, 1));
  co_await sleep(2ms);
  engine().io().cancel(p.read_fd);
  EXPECT_EQ(co_await std::move(first), -ECANCELED);
  EXPECT_EQ(co_await std::move(second), -ECANCELED);
  EXPECT_FALSE(untouched.available()) << "another descriptor's operation was cancelled";
  const char out[] = "k";
  co_await engine().io().submit(io_request::write(other.write_fd, out, 1));
  EXPECT_EQ(co_await std::move(untouched), 1);
  // The descriptor still works afterwards; cancelling with nothing in
  // flight is harmless.
  engine().io().cancel(p.read_fd);
  co_await engine().io().submit(io_request::write(p.write_fd, out, 1));
  EXPECT_EQ(co_await engine().io().submit(io_request::read(p.read_fd, a, 1)), 1);
}

REEF_TEST(io, concurrent_reads_on_one_descriptor_all_complete) {
  // Their order is not promised (io_uring may complete them either way);
  // that each gets one of the bytes, and none is lost, is.
  test_pipe p;
  char a[1], b[1];
  auto first = engine().io().submit(io_request::read(p.read_fd, a, 1));
  auto second = engine().io().submit(io_request::read(p.read_fd, b, 1));
  const char out[] = "xy";
  co_await engine().io().submit(io_request::write(p.write_fd, out, 2));
  EXPECT_EQ(co_await std::move(first), 1);
  EXPECT_EQ(co_await std::move(second), 1);
  std::string got{a[0], b[0]};
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, "xy");
}

REEF_TEST(io, readiness_reports_readable) {
  test_pipe p;
  auto ready = engine().io().readiness(p.read_fd, POLLIN);
  co_await sleep(1ms);
  EXPECT_FALSE(ready.available());
  const char out[] = "z";
  co_await engine().io().submit(io_request::write(p.write_fd, out, 1));
  long revents = co_await std::move(ready);
  EXPECT_TRUE(revents & POLLIN) << revents;
}

REEF_TEST(io, bad_descriptor_is_an_error_value) {
  char buf[4];
  EXPECT_EQ(co_await engine().io().submit(io_request::read(-1, buf, 4)), -EBADF);
  EXPECT_EQ(co_await engine().io().submit(io_request::recv(-1, buf, 4)), -EBADF);
  EXPECT_EQ(co_await engine().io().submit(io_request::fsync(-1)), -EBADF);
}

REEF_TEST(io, file_positional_write_read_and_fsync) {
  std::string dir = std::getenv("TEST_TMPDIR") != nullptr ? std::getenv("TEST_TMPDIR") : "/tmp";
  std::string path = dir + "/reef_io_test_file";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REEF_ASSERT(fd >= 0);
  const char out[] = "0123456789";
  EXPECT_EQ(co_await engine().io().submit(io_request::write(fd, out, 10, 0)), 10);
  EXPECT_EQ(co_await engine().io().submit(io_request::fdatasync(fd)), 0);
  EXPECT_EQ(co_await engine().io().submit(io_request::fsync(fd)), 0);
  char in[4] = {};
  EXPECT_EQ(co_await engine().io().submit(io_request::read(fd, in, 4, 3)), 4);
  EXPECT_EQ(std::string(in, 4), "3456");
  iovec iov[2] = {{in, 2}, {in + 2, 2}};
  EXPECT_EQ(co_await engine().io().submit(io_request::readv(fd, iov, 2, 6)), 4);
  EXPECT_EQ(std::string(in, 4), "6789");
  ::close(fd);
  ::unlink(path.c_str());
}

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
struct loopback_listener {
  loopback_listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REEF_ASSERT(fd >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REEF_ASSERT(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REEF_ASSERT(::listen(fd, 16) == 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~loopback_listener() { ::close(fd); }
  int fd;
  sockaddr_in addr{};
};

int new_tcp_socket() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REEF_ASSERT(fd >= 0);
  return fd;
}

REEF_TEST(io, tcp_accept_connect_send_recv) {
  loopback_listener listener;
  sockaddr_in peer{};
  socklen_t peer_len = sizeof(peer);
  auto accepting = engine().io().submit(
      io_request::accept(listener.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len));
  int client = new_tcp_socket();
  long rc = co_await engine().io().submit(io_request::connect(
      client, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof(listener.addr)));
  EXPECT_EQ(rc, 0);
  long server = co_await std::move(accepting);
  EXPECT_GE(server, 0) << -server;
  if (server < 0) co_return;
  EXPECT_EQ(peer.sin_family, AF_INET);
  const char out[] = "ping";
  EXPECT_EQ(co_await engine().io().submit(io_request::send(client, out, 4)), 4);
  char in[8] = {};
  EXPECT_EQ(co_await engine().io().submit(io_request::recv(static_cast<int>(server), in, 8)), 4);
  EXPECT_EQ(std::string(in, 4), "ping");
  ::close(client);
  // The peer's close reads as end of stream.
  EXPECT_EQ(co_await engine().io().submit(io_request::recv(static_cast<int>(server), in, 8)), 0);
  ::close(static_cast<int>(server));
}

// Collects what a multishot operation delivers.
struct collecting_receiver final : multishot_receiver {
  std::vector<long> results;
  std::vector<temporary_buffer<char>> buffers;  // held: they stay out of the pool
  bool ended = false;
  void on_result(long result, temporary_buffer<char> data, bool more) noexcept override {
    results.push_back(result);
    if (!data.empty()) buffers.push_back(std::move(data));
    ended = !more;
  }
  std::string text() const {
    std::string all;
    for (const auto& b : buffers) all.append(b.view());
    return all;
  }
};

// Yields until `done()` or a second passes.
future<bool> eventually(noncopyable_function<bool()> done) {
  auto until = steady_clock_type::now() + 1s;
  while (!done() && steady_clock_type::now() < until) co_await sleep(100us);
  co_return done();
}

core_internal::io_uring_backend* uring() { return dynamic_cast<core_internal::io_uring_backend*>(&engine().io()); }

bool kernel_at_least_6_0() {
  utsname u{};
  int major = 0;
  return ::uname(&u) == 0 && std::sscanf(u.release, "%d.", &major) == 1 && major >= 6;
}

REEF_TEST(io, multishot_is_offered_by_io_uring_only) {
  EXPECT_EQ(engine().io().supports_multishot(), uring() != nullptr && kernel_at_least_6_0())
      << "io_uring on Linux 6.0 or later has multishot receive";
  if (engine().io().supports_multishot()) co_return;
  // The epoll backend refuses, and the caller uses submit().
  collecting_receiver r;
  int fds[2];
  REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
  EXPECT_FALSE(engine().io().recv_multishot(fds[0], r));
  EXPECT_FALSE(engine().io().accept_multishot(fds[0], r));
  ::close(fds[0]);
  ::close(fds[1]);
}

REEF_TEST(io, multishot_receive_delivers_each_arrival_until_cancelled) {
  if (!engine().io().supports_multishot()) co_return;  // (see above)
  int fds[2];
  REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  collecting_receiver r;
  EXPECT_TRUE(engine().io().recv_multishot(fds[0], r));
  for (const char* word : {"one ", "two ", "three"}) {
    std::size_t before = r.results.size();
    EXPECT_GT(::write(fds[1], word, std::strlen(word)), 0);
    EXPECT_TRUE(co_await eventually([&] { return r.results.size() > before; }));
  }
  EXPECT_EQ(r.text(), "one two three");
  EXPECT_FALSE(r.ended);
  EXPECT_EQ(uring()->pool_buffers_out(), 3u) << "the held buffers are out of the pool";
  r.buffers.clear();
  EXPECT_EQ(uring()->pool_buffers_out(), 0u) << "and back when released";
  EXPECT_TRUE(engine().io().cancel_multishot(r));
  EXPECT_TRUE(co_await eventually([&] { return r.ended; }));
  EXPECT_EQ(r.results.back(), -ECANCELED);

  // End of stream ends it with 0.
  collecting_receiver eof;
  EXPECT_TRUE(engine().io().recv_multishot(fds[0], eof));
  ::close(fds[1]);
  EXPECT_TRUE(co_await eventually([&] { return eof.ended; }));
  EXPECT_EQ(eof.results.back(), 0);
  ::close(fds[0]);
}

bool kernel_at_least_6_8() {
  utsname u{};
  int major = 0, minor = 0;
  return ::uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 &&
         (major > 6 || (major == 6 && minor >= 8));
}

REEF_TEST(io, multishot_read_delivers_each_piece_of_a_pipe_until_cancelled) {
  int fds[2];
  REEF_ASSERT(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  collecting_receiver r;
  const bool offered = engine().io().read_multishot(fds[0], r);
  EXPECT_EQ(offered, engine().io().supports_read_multishot());
  if (uring() != nullptr && kernel_at_least_6_8()) {
    EXPECT_TRUE(offered) << "io_uring on Linux 6.8 or later reads multishot";
  }
  EXPECT_EQ(engine().io().multishot_buffer_size(),
            engine().io().supports_multishot() ? core_internal::io_uring_backend::pool_buffer_size : 0u);
  EXPECT_EQ(engine().io().multishot_buffers(),
            engine().io().supports_multishot() ? core_internal::io_uring_backend::pool_buffers : 0u);
  if (offered) {
    for (const char* word : {"one ", "two ", "three"}) {
      std::size_t before = r.results.size();
      EXPECT_GT(::write(fds[1], word, std::strlen(word)), 0);
      EXPECT_TRUE(co_await eventually([&] { return r.results.size() > before; }));
    }
    EXPECT_EQ(r.text(), "one two three");
    EXPECT_EQ(r.results, (std::vector<long>{4, 4, 5})) << "a read for each write";
    EXPECT_FALSE(r.ended);
    // More than a buffer holds arrives in buffer-sized pieces.
    const std::string big(engine().io().multishot_buffer_size() + 100, 'b');
    EXPECT_EQ(::write(fds[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
    EXPECT_TRUE(co_await eventually([&] { return r.text().size() == 13 + big.size(); }));
    EXPECT_EQ(r.text().substr(13), big);
    EXPECT_EQ(engine().io().multishot_buffers_free(), engine().io().multishot_buffers() - r.buffers.size());
    r.buffers.clear();
    EXPECT_EQ(uring()->pool_buffers_out(), 0u);
    EXPECT_EQ(engine().io().multishot_buffers_free(), engine().io().multishot_buffers());
    EXPECT_TRUE(engine().io().cancel_multishot(r));
    REEF_ASSERT(co_await eventually([&] { return r.ended; }), "the cancelled read never ended");
    EXPECT_EQ(r.results.back(), -ECANCELED);
  } else {
    EXPECT_TRUE(r.results.empty()) << "a refusal calls nothing";
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

REEF_TEST(io, multishot_receive_ends_with_enobufs_when_the_pool_is_dry) {
  if (!engine().io().supports_multishot()) co_return;
  int fds[2];
  REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  collecting_receiver r;
  EXPECT_TRUE(engine().io().recv_multishot(fds[0], r));
  // One arrival per buffer, every buffer held, one more arrival.
  const unsigned total = core_internal::io_uring_backend::pool_buffers + 1;
  for (unsigned i = 0; i < total && !r.ended; ++i) {
    std::size_t before = r.results.size();
    EXPECT_EQ(::write(fds[1], "x", 1), 1);
    if (!co_await eventually([&] { return r.results.size() > before; })) break;
  }
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.results.back(), -ENOBUFS);
  EXPECT_EQ(r.buffers.size(), core_internal::io_uring_backend::pool_buffers);
  EXPECT_EQ(uring()->pool_buffers_out(), core_internal::io_uring_backend::pool_buffers);
  r.buffers.clear();
  EXPECT_EQ(uring()->pool_buffers_out(), 0u);
  // With buffers back, a new receive reads what waited in the socket.
  collecting_receiver again;
  EXPECT_TRUE(engine().io().recv_multishot(fds[0], again));
  EXPECT_TRUE(co_await eventually([&] { return !again.buffers.empty(); }));
  EXPECT_EQ(again.text(), "x") << "the byte that found no buffer";
  EXPECT_TRUE(engine().io().cancel_multishot(again));
  EXPECT_TRUE(co_await eventually([&] { return again.ended; }));
  ::close(fds[0]);
  ::close(fds[1]);
}

// A ring far smaller than what is in flight: 32 multishot receives each
// post a completion into an 8-entry completion ring (the kernel keeps the
// rest aside), and plain receives submitted meanwhile find the kernel
// refusing submissions until the completions are reaped. Nothing is lost
// and nothing fails with -EBUSY.
REEF_TEST(io, completions_beyond_the_rings_are_reaped_and_submissions_wait) {
  if (uring() == nullptr || !kernel_at_least_6_0()) co_return;
  core_internal::io_uring_backend ring(4, 8);
  constexpr int receivers_n = 32;
  constexpr int reads_n = 12;
  std::vector<std::array<int, 2>> pairs(receivers_n + reads_n);
  for (auto& p : pairs) {
    REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p.data()) == 0);
  }
  std::vector<collecting_receiver> receivers(receivers_n);
  for (int i = 0; i < receivers_n; ++i) EXPECT_TRUE(ring.recv_multishot(pairs[i][0], receivers[i]));
  ring.flush();
  for (int i = 0; i < receivers_n; ++i) EXPECT_EQ(::write(pairs[i][1], "x", 1), 1);
  ring.reap();  // 8 land; the kernel keeps the rest aside
  std::vector<std::array<char, 4>> read_buffers(reads_n);
  std::vector<future<long>> reads;
  for (int j = 0; j < reads_n; ++j) {
    auto& p = pairs[receivers_n + j];
    EXPECT_EQ(::write(p[1], "y", 1), 1);
    reads.push_back(ring.submit(io_request::recv(p[0], read_buffers[j].data(), read_buffers[j].size())));
  }
  for (auto& f : reads) {
    if (f.available()) {
      long rc = f.get();
      EXPECT_EQ(rc, 1) << "a receive completed at once: " << rc;
      f = make_ready_future<long>(rc);
    }
  }
  auto delivered = [&] {
    for (auto& r : receivers) {
      if (r.text() != "x") return false;
    }
    for (auto& f : reads) {
      if (!f.available()) return false;
    }
    return true;
  };
  for (int i = 0; i < 2000 && !delivered(); ++i) {
    ring.flush();
    ring.reap();
    co_await yield();
  }
  int missing = 0;
  for (auto& r : receivers) missing += r.text() == "x" ? 0 : 1;
  EXPECT_EQ(missing, 0) << "multishot completions lost in the overflow";
  for (int j = 0; j < reads_n; ++j) {
    EXPECT_TRUE(reads[j].available()) << "receive " << j << " never completed";
    if (!reads[j].available()) continue;
    EXPECT_EQ(reads[j].get(), 1) << "receive " << j;
  }
  EXPECT_GT(ring.stats().cq_overflow_flushes, 0u) << "the test did overflow the completion ring";
  ring.cancel_all();  // ends the receives while their receivers live
  for (auto& p : pairs) {
    ::close(p[0]);
    ::close(p[1]);
  }
}

// File operations go to the kernel once submit_batch_max wait, without the
// loop's flush: the disk starts on them while the loop prepares the rest.
// Socket operations wait for the flush (a peer is woken once per loop).
REEF_TEST(io, a_full_batch_of_file_operations_goes_before_the_flush) {
  if (uring() == nullptr) co_return;
  constexpr unsigned batch = core_internal::io_uring_backend::submit_batch_max;
  core_internal::io_uring_backend ring(64, 128);
  ring.flush();  // (its wakeup read)
  std::vector<std::array<int, 2>> pipes(batch);
  std::vector<std::array<int, 2>> sockets(batch);
  std::vector<std::array<char, 4>> buffers(2 * batch);
  for (unsigned i = 0; i < batch; ++i) {
    REEF_ASSERT(::pipe2(pipes[i].data(), O_CLOEXEC) == 0);
    REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sockets[i].data()) == 0);
    EXPECT_EQ(::write(pipes[i][1], "z", 1), 1);  // each operation can complete at once
    EXPECT_EQ(::write(sockets[i][1], "z", 1), 1);
  }
  auto reap_until = [&](std::vector<future<long>>& ops, unsigned n, int rounds) {
    for (int i = 0; i < rounds; ++i) {
      ring.reap();
      unsigned done = 0;
      for (auto& f : ops) done += f.available() ? 1 : 0;
      if (done >= n) return;
      ::usleep(200);
    }
  };
  std::vector<future<long>> receives;
  for (unsigned i = 0; i < batch; ++i) {
    receives.push_back(ring.submit(io_request::recv(sockets[i][0], buffers[batch + i].data(), 4)));
  }
  std::vector<future<long>> reads;
  for (unsigned i = 0; i + 1 < batch; ++i) {
    reads.push_back(ring.submit(io_request::read(pipes[i][0], buffers[i].data(), 4)));
  }
  EXPECT_EQ(ring.queued(), 2 * batch - 1) << "handed over before the batch of file operations was full";
  ring.reap();
  for (unsigned i = 0; i + 1 < batch; ++i) {
    EXPECT_FALSE(reads[i].available()) << "read " << i << " went before the batch was full";
  }
  for (unsigned i = 0; i < batch; ++i) {
    EXPECT_FALSE(receives[i].available()) << "receive " << i << " went without a flush";
  }
  reads.push_back(ring.submit(io_request::read(pipes[batch - 1][0], buffers[batch - 1].data(), 4)));
  EXPECT_EQ(ring.queued(), 0u) << "the full batch was not handed over";
  reap_until(reads, batch, 1000);
  for (unsigned i = 0; i < batch; ++i) {
    EXPECT_TRUE(reads[i].available()) << "read " << i << " not handed over with the full batch";
    if (reads[i].available()) EXPECT_EQ(reads[i].get(), 1) << "read " << i;
  }
  // (The receives were queued first, so they went with the batch.)
  ring.flush();
  reap_until(receives, batch, 1000);
  for (unsigned i = 0; i < batch; ++i) {
    EXPECT_TRUE(receives[i].available()) << "receive " << i;
    if (receives[i].available()) EXPECT_EQ(receives[i].get(), 1) << "receive " << i;
  }
  ring.cancel_all();
  for (unsigned i = 0; i < batch; ++i) {
    for (int fd : {pipes[i][0], pipes[i][1], sockets[i][0], sockets[i][1]}) ::close(fd);
  }
}

REEF_TEST(io, multishot_accept_hands_over_each_connection) {
  if (!engine().io().supports_multishot()) co_return;
  loopback_listener listener;
  collecting_receiver r;
  EXPECT_TRUE(engine().io().accept_multishot(listener.fd, r));
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    int client = new_tcp_socket();
    long rc = co_await engine().io().submit(io_request::connect(
        client, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof(listener.addr)));
    EXPECT_EQ(rc, 0);
    clients.push_back(client);
  }
  EXPECT_TRUE(co_await eventually([&] { return r.results.size() == 3; }));
  for (long fd : r.results) {
    EXPECT_GE(fd, 0);
    if (fd < 0) continue;
    EXPECT_NE(::fcntl(static_cast<int>(fd), F_GETFL) & O_NONBLOCK, 0) << "non-blocking";
    ::close(static_cast<int>(fd));
  }
  EXPECT_FALSE(r.ended);
  EXPECT_TRUE(engine().io().cancel_multishot(r));
  EXPECT_TRUE(co_await eventually([&] { return r.ended; }));
  EXPECT_EQ(r.results.back(), -ECANCELED);
  for (int c : clients) ::close(c);
}

REEF_TEST(io, connect_to_a_closed_port_is_refused) {
  sockaddr_in addr{};
  {
    loopback_listener listener;
    addr = listener.addr;
  }  // closed: nothing listens on that port now
  int client = new_tcp_socket();
  long rc = co_await engine().io().submit(
      io_request::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)));
  EXPECT_EQ(rc, -ECONNREFUSED);
  ::close(client);
}

REEF_TEST(io, sendmsg_and_recvmsg_gather_and_scatter) {
  int sv[2];
  REEF_ASSERT(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  char a[] = "ab", b[] = "cd";
  iovec out_iov[2] = {{a, 2}, {b, 2}};
  msghdr out{};
  out.msg_iov = out_iov;
  out.msg_iovlen = 2;
  EXPECT_EQ(co_await engine().io().submit(io_request::sendmsg(sv[0], &out)), 4);
  char x[3] = {}, y[1] = {};
  iovec in_iov[2] = {{x, 3}, {y, 1}};
  msghdr in{};
  in.msg_iov = in_iov;
  in.msg_iovlen = 2;
  EXPECT_EQ(co_await engine().io().submit(io_request::recvmsg(sv[1], &in)), 4);
  EXPECT_EQ(std::string(x, 3) + y[0], "abcd");
  ::close(sv[0]);
  ::close(sv[1]);
}

REEF_TEST(io, many_operations_in_one_batch) {
  // More than one submission ring's worth, queued before any completes.
  constexpr int n = 600;
  test_pipe p;
  std::vector<future<long>> reads;
  std::vector<char> in(n);
  for (int i = 0; i < n; ++i) reads.push_back(engine().io().submit(io_request::read(p.read_fd, &in[i], 1)));
  std::vector<char> out(n, 'q');
  long written = 0;
  while (written < n) {
    long rc = co_await engine().io().submit(io_request::write(p.write_fd, out.data() + written, n - written));
    EXPECT_GT(rc, 0);
    if (rc <= 0) co_return;
    written += rc;
  }
  for (auto& r : reads) EXPECT_EQ(co_await std::move(r), 1);
  EXPECT_EQ(std::string(in.begin(), in.end()), std::string(n, 'q'));
}

// --- Reactors of their own, on other threads. -------------------------------

// A reactor that never sleeps still gets its completions: the kernel
// queues their work for the ring's owner (io_uring defers it until asked)
// and flags the ring, and the polling loop asks.
TEST(reactor_thread, poll_mode_gets_completions_without_sleeping) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  long got = -1;
  bool timed_out = false;
  std::uint64_t sleeps = 0;
  std::atomic<bool> read_waits{false};
  char buf[8];  // outlives the ring (a read that timed out is cancelled with it)
  std::thread writer([&] {
    // The write comes once the read waits in the kernel, so that its
    // completion is work the kernel defers to the ring's owner.
    for (int i = 0; i < 10'000 && !read_waits.load(); ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(::write(fds[1], "abc", 3), 3);
  });
  std::thread([&] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false, .poll_mode = true});
    r.run([&]() -> future<> {
      future<long> read = engine().io().submit(io_request::read(fds[0], buf, sizeof(buf)));
      // Turns of the loop (a timer fires in a later one, after the loop
      // handed the read to the kernel), and the read still waits: the
      // pipe is empty.
      co_await sleep(1ms);
      co_await sleep(1ms);
      EXPECT_FALSE(read.available()) << "the pipe had data before the write";
      read_waits = true;
      try {
        got = co_await with_timeout(steady_clock_type::now() + 10s, std::move(read));
      } catch (const timed_out_error&) {
        timed_out = true;
      }
      sleeps = engine().stats().sleeps;
    });
  }).join();
  writer.join();
  EXPECT_FALSE(timed_out) << "the polling loop never got the read's completion";
  EXPECT_EQ(got, 3);
  EXPECT_EQ(sleeps, 0u) << "poll mode slept";
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(reactor_thread, run_returns_mains_exit_code) {
  int code = -1;
  std::thread([&] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    code = r.run([]() -> future<int> {
      co_await sleep(1ms);
      co_return 7;
    });
  }).join();
  EXPECT_EQ(code, 7);
}

TEST(reactor_thread, failed_main_exits_with_1) {
  int code = -1;
  std::thread([&] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    code = r.run([]() -> future<> { return make_exception_future<>(std::runtime_error("main")); });
  }).join();
  EXPECT_EQ(code, 1);
}

TEST(reactor_thread, request_stop_from_another_thread_wakes_a_sleeping_reactor) {
  std::atomic<reactor*> running{nullptr};
  std::atomic<bool> stopped{false};
  std::atomic<bool> may_destroy{false};
  std::thread t([&] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    r.schedule(make_task([&] { running.store(&r); }));
    r.run();
    stopped.store(true);
    // request_stop() requires the reactor to outlive the call.
    while (!may_destroy.load()) std::this_thread::yield();
  });
  while (running.load() == nullptr) std::this_thread::yield();
  // Give it no work: it sleeps, and only request_stop() can end run().
  running.load()->request_stop();
  may_destroy.store(true);
  t.join();
  EXPECT_TRUE(stopped.load());
}

TEST(reactor_thread, destructor_completes_io_in_flight_and_runs_what_is_left) {
  test_pipe p;
  bool completed = false;
  std::thread([&] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    char buf[1];
    (void)r.io().submit(io_request::read(p.read_fd, buf, 1)).then([&](long rc) {
      completed = rc == -ECANCELED;
    });
    r.run_pending_tasks();
    r.io().flush();
  }).join();
  EXPECT_TRUE(completed);
}

TEST(reactor_thread, second_reactor_on_a_thread_is_refused) {
  std::thread([] {
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    EXPECT_THROW(reactor again(reactor_options{.stop_on_sigint_sigterm = false}), std::logic_error);
  }).join();
}

TEST(reactor_thread, stall_is_reported_once_with_a_backtrace) {
  std::vector<std::string> lines;
  std::mutex mutex;
  set_log_sink([&](std::string_view line) {
    std::lock_guard lock(mutex);
    lines.emplace_back(line);
  });
  std::size_t reported = 0;
  std::thread([&] {
    reactor_options o{.stall_threshold = std::chrono::milliseconds(30), .stop_on_sigint_sigterm = false};
    reactor r(o);
    r.run([]() -> future<> {
      reef_test_busy_stall(300);
      return make_ready_future<>();
    });
    reported = r.stats().stalls_reported;
  }).join();
  set_log_sink(nullptr);
  EXPECT_EQ(reported, 1u);
  std::string stall_line;
  for (auto& l : lines) {
    if (l.find("stalled") != std::string::npos) stall_line = l;
  }
  ASSERT_FALSE(stall_line.empty());
  EXPECT_EQ(std::count(stall_line.begin(), stall_line.end(), '\n'), 1) << "one line";
#if !defined(REEF_TSAN)
  // (ThreadSanitizer delays signals until the stall is over.)
  EXPECT_NE(stall_line.find("reef_test_busy_stall"), std::string::npos) << stall_line;
#endif
}

TEST(reactor_thread, busy_reactor_with_short_tasks_reports_no_stall) {
  std::size_t reported = 1;
  std::thread([&] {
    reactor_options o{.stall_threshold = std::chrono::milliseconds(30), .stop_on_sigint_sigterm = false};
    reactor r(o);
    r.run([]() -> future<> {
      auto until = steady_clock_type::now() + 200ms;
      while (steady_clock_type::now() < until) {
        reef_test_busy_stall(1);
        co_await yield();
      }
    });
    reported = r.stats().stalls_reported;
  }).join();
  EXPECT_EQ(reported, 0u);
}

// A count from a thread's /proc status ("voluntary_ctxt_switches", ...).
long status_count(const std::string& status_path, std::string_view field) {
  std::ifstream status(status_path);
  std::string line;
  while (std::getline(status, line)) {
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 && line[field.size()] == ':') {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return 0;
}

// The voluntary context switches of every thread of this process but the
// calling one: how often the others went to sleep (and so woke).
long voluntary_switches_of_other_threads() {
  const std::string self = std::to_string(::gettid());
  long total = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    if (entry.path().filename() == self) continue;
    total += status_count(entry.path().string() + "/status", "voluntary_ctxt_switches");
  }
  return total;
}

// Pins the calling thread to the CPU it is on, as smp does with a shard.
void pin_to_current_cpu() {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  REEF_ASSERT(pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0);
}

// A shard pinned to its CPU and busy with work that yields at every
// preemption: it is preempted every quota by a signal on its own thread,
// and no other thread wakes per quota to do it (a companion thread that
// slept one quota at a time, on the shard's CPU, cost the shard two
// context switches per quota). Involuntary switches of the shard depend on
// the rest of the machine, so the test counts the other threads' wake-ups
// instead; core:reactor_benchmark's busy_pinned_shard_preemption measures
// the shard's own switches.
TEST(reactor_thread, a_busy_pinned_reactor_is_preempted_by_a_signal_not_a_thread) {
  long other_wakeups = -1;
  long involuntary = -1;
  std::uint64_t preemptions = 0;
  std::uint64_t ticks = 0;
  std::thread([&] {
    pin_to_current_cpu();
    reactor r(reactor_options{.task_quota = 500us, .stop_on_sigint_sigterm = false});
    r.run([&]() -> future<> {
      const std::string self = "/proc/thread-self/status";
      const long others_before = voluntary_switches_of_other_threads();
      const long involuntary_before = status_count(self, "nonvoluntary_ctxt_switches");
      const auto until = steady_clock_type::now() + 300ms;
      while (steady_clock_type::now() < until) {
        if (need_preempt()) {
          ++preemptions;
          co_await yield();
        }
      }
      other_wakeups = voluntary_switches_of_other_threads() - others_before;
      involuntary = status_count(self, "nonvoluntary_ctxt_switches") - involuntary_before;
    });
    ticks = r.stats().preemption_ticks;
  }).join();
  std::printf("preemptions %llu, timer signals %llu, other threads' wake-ups %ld, the shard's involuntary switches %ld\n",
              static_cast<unsigned long long>(preemptions), static_cast<unsigned long long>(ticks), other_wakeups,
              involuntary);
  EXPECT_GE(preemptions, 60u) << "300 ms of 0.5 ms quotas preempt the task often";
  EXPECT_GE(ticks, preemptions) << "each preemption came from the timer's signal";
  EXPECT_LT(static_cast<std::uint64_t>(other_wakeups), preemptions / 10)
      << other_wakeups << " wake-ups of other threads for " << preemptions << " preemptions";
}

// The blocking-call threads of a pinned shard run on the process's CPUs,
// not competing with their reactor for its one.
TEST(reactor_thread, blocking_calls_of_a_pinned_reactor_run_on_every_cpu) {
  if (core_internal::process_cpu_count() < 2) GTEST_SKIP() << "one CPU: nothing to spread over";
  int pool_cpus = 0;
  std::thread([&] {
    pin_to_current_cpu();
    reactor r(reactor_options{.stop_on_sigint_sigterm = false});
    r.run([&]() -> future<> {
      pool_cpus = co_await run_blocking([] {
        cpu_set_t set;
        CPU_ZERO(&set);
        sched_getaffinity(0, sizeof(set), &set);
        return CPU_COUNT(&set);
      });
    });
  }).join();
  EXPECT_EQ(pool_cpus, core_internal::process_cpu_count());
}

}  // namespace
}  // namespace reef
