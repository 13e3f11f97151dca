// A reactor's sleep lets in the signals the reactor handles, even one its
// thread had blocked when the reactor started (smp's shard threads start
// with every signal blocked): the wait's signal mask follows the thread's.
// A binary of its own: one reactor per process handles signals.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/reactor.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

TEST(reactor, a_handled_signal_wakes_a_sleeping_reactor_even_if_it_was_blocked_at_start) {
  std::atomic<reactor*> running{nullptr};
  std::atomic<pthread_t> thread_id{};
  std::atomic<bool> handled{false};
  std::thread t([&] {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, nullptr);  // inherited blocked, as a shard's
    reactor r(reactor_options{.stop_on_sigint_sigterm = false, .idle_poll_time = std::chrono::microseconds(0)});
    r.handle_signal(SIGUSR2, [&] {
      handled = true;
      r.stop();
    });
    thread_id = pthread_self();
    running = &r;
    r.run();
    running = nullptr;
  });
  while (running.load() == nullptr) std::this_thread::sleep_for(1ms);
  // Long enough for the reactor to sleep with no deadline (its preemption
  // timer parks after 10 ms without work).
  std::this_thread::sleep_for(100ms);
  pthread_kill(thread_id.load(), SIGUSR2);
  for (int i = 0; i < 500 && !handled.load(); ++i) std::this_thread::sleep_for(10ms);
  const bool in_time = handled.load();
  if (!in_time) running.load()->request_stop();  // it slept through: end the test anyway
  t.join();
  EXPECT_TRUE(in_time) << "the signal stayed blocked while the reactor slept";
}

}  // namespace
}  // namespace reef
