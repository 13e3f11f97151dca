#include "smp/smp.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#if defined(REEF_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

#include "core/log.h"
#include "core/metrics.h"
#include "core/sanitizers.h"
#include "core/when_all.h"
#include "memory/allocator.h"
#include "smp/alien.h"

namespace reef {

namespace {

logger& smp_logger() {
  static logger* l = new logger("smp");
  return *l;
}

// Per-shard counts of user messages, read by the quiescence check.
thread_local std::uint64_t messages_sent = 0;
thread_local std::uint64_t messages_answered = 0;
thread_local promise<>* all_answered = nullptr;

// Set by the stop message; the poller stops the reactor once the answer to
// it is on its way.
thread_local bool shard_stopping = false;

// What smp::at_shutdown() registered on this shard, in order; and whether
// they have run (later ones are refused).
using shutdown_hook = noncopyable_function<future<>()>;
thread_local std::vector<shutdown_hook>* shutdown_hooks = nullptr;
thread_local bool shutdown_hooks_ran = false;

void drop_shutdown_hooks() noexcept {
  delete shutdown_hooks;
  shutdown_hooks = nullptr;
}

// Runs this shard's hooks, the last registered first. Each is called
// where it stays until its future resolves: a coroutine lambda's frame
// refers to the closure it was called on.
future<> run_shutdown_hooks() {
  shutdown_hooks_ran = true;
  return repeat([] {
    if (shutdown_hooks == nullptr || shutdown_hooks->empty()) {
      drop_shutdown_hooks();
      return make_ready_future<stop_iteration>(stop_iteration::yes);
    }
    auto hook = std::make_unique<shutdown_hook>(std::move(shutdown_hooks->back()));
    shutdown_hooks->pop_back();
    auto running = futurize_invoke(*hook);
    return std::move(running)
        .then_wrapped([hook = std::move(hook)](future<> done) {
          if (done.failed()) {
            try {
              std::rethrow_exception(done.get_exception());
            } catch (const std::exception& e) {
              smp_logger().error("a shutdown hook failed: {}", e.what());
            } catch (...) {
              smp_logger().error("a shutdown hook failed with an unknown exception");
            }
          }
          return stop_iteration::no;
        });
  });
}

}  // namespace

namespace smp_internal {

// The foreign-thread inboxes are allocated for smp::shards_max shards, once.
constexpr unsigned shards_max = smp::shards_max;
static_assert(smp::shards_max <= memory::max_shards, "every shard has an arena of its own");

alien::message_queue* alien_queue(unsigned shard) noexcept {
  // For the life of the process: a foreign thread may hold one while smp
  // stops (it finds it closed).
  static auto* inboxes = new alien::message_queue[shards_max];
  return shard < shards_max ? &inboxes[shard] : nullptr;
}

// Everything smp::run() sets up. One at a time per process.
struct smp_runtime {
  explicit smp_runtime(unsigned n)
      : shards(n), reactors(n, nullptr), queues(n * n), started(n), queues_ready(1) {}

  smp_message_queue* queue(unsigned from, unsigned to) noexcept {
    return queues[from * shards + to].get();
  }

  unsigned shards;
  std::vector<reactor*> reactors;
  std::vector<std::unique_ptr<smp_message_queue>> queues;  // [from * shards + to]
  std::latch started;       // every shard's reactor exists (or failed to)
  std::latch queues_built{static_cast<std::ptrdiff_t>(shards)};  // every shard built its outgoing queues
  std::latch queues_ready;  // shard 0 saw them all built (or gave up)
  // Shard 0 has every stop answer: nobody will wake another shard's reactor
  // any more, so the shards may destroy theirs (a sender wakes its peer
  // right after publishing, and the peer may be done by then).
  std::latch reactors_may_go{1};
  std::atomic<bool> failed{false};
  std::atomic<bool> running{false};
  std::atomic<bool> accepting_user_messages{false};
  // Per shard: it still takes messages (false once it decided to stop: a
  // message pushed after that might never be run).
  std::unique_ptr<std::atomic<bool>[]> taking_messages{new std::atomic<bool>[shards]};
  std::vector<std::thread> threads;
};

namespace {
std::atomic<smp_runtime*> runtime{nullptr};

// On shard `from`: its queues to every other shard, in its own memory (a
// shard's share grows with the number of shards, not the whole n x n).
void build_outgoing_queues(smp_runtime& rt, unsigned from) noexcept {
  try {
    for (unsigned to = 0; to < rt.shards; ++to) {
      if (to != from) {
        rt.queues[from * rt.shards + to] = std::make_unique<smp_message_queue>(rt.reactors[from], rt.reactors[to]);
      }
    }
  } catch (const std::exception& e) {
    smp_logger().error("shard {} could not build its queues to {} shards: {}", from, rt.shards - 1, e.what());
    rt.failed.store(true);
  }
}
}  // namespace

smp_message_queue* queue_between(unsigned from, unsigned to, bool user) noexcept {
  smp_runtime* rt = runtime.load(std::memory_order_acquire);
  if (rt == nullptr || !rt->running.load(std::memory_order_acquire) || from >= rt->shards ||
      to >= rt->shards || from == to) {
    return nullptr;
  }
  if (user && !rt->accepting_user_messages.load(std::memory_order_acquire)) return nullptr;
  if (!rt->taking_messages[to].load(std::memory_order_acquire)) return nullptr;
  return rt->queue(from, to);
}

namespace {

// Per shard: objects of its own that other threads dropped when no
// message could carry them home; deleted by the shard's final drain. A
// lock-free stack; `closed_list` once drained.
std::atomic<remote_destroyer*> deferred_destructions[shards_max];
remote_destroyer* const closed_list = reinterpret_cast<remote_destroyer*>(std::uintptr_t{1});
std::atomic<std::size_t> leaked_objects{0};

}  // namespace

void destroy_on(unsigned owner, remote_destroyer* d) noexcept {
  if (d == nullptr) return;
  if (owner == this_shard && runtime.load(std::memory_order_acquire) != nullptr) {
    delete d;
    return;
  }
  // A user's message while they are taken: shutdown then waits for it to
  // be answered before it stops any shard. (The message holds a raw
  // pointer: whatever happens to it, `d` is never deleted here.) Once
  // users' messages are refused, no message is sent at all: the owner may
  // stop between a look at whether it takes messages and the push, and the
  // message would be lost; the deferred list below has no such window.
  if (queue_between(this_shard, owner, true) != nullptr) {
    auto f = submit(owner, [d] { delete d; }, true);
    if (!f.available() || !f.failed()) {
      (void)std::move(f).handle_exception([](std::exception_ptr) {});
      return;
    }
    f.ignore_ready_future();  // refused after all
  }
  if (owner < shards_max && runtime.load(std::memory_order_acquire) != nullptr) {
    auto& head = deferred_destructions[owner];
    remote_destroyer* top = head.load(std::memory_order_relaxed);
    while (top != closed_list) {
      d->_next = top;
      if (head.compare_exchange_weak(top, d, std::memory_order_release, std::memory_order_relaxed)) return;
    }
  }
  // The owner is gone: leak rather than destroy on the wrong thread.
#if defined(REEF_ASAN)
  __lsan_ignore_object(d);  // on purpose, and counted
#endif
  const std::size_t n = ++leaked_objects;
  smp_logger().warn("an object owned by shard {} was dropped after that shard stopped; leaked, not destroyed "
                    "on the wrong thread ({} so far)",
                    owner, n);
}

void drain_deferred_destructions(unsigned shard) noexcept {
  if (shard >= shards_max) return;
  remote_destroyer* d = deferred_destructions[shard].exchange(closed_list, std::memory_order_acquire);
  while (d != nullptr && d != closed_list) {
    remote_destroyer* next = d->_next;
    delete d;
    d = next;
  }
}

std::size_t leaked_remote_objects() noexcept { return leaked_objects.load(); }

void count_sent() noexcept { ++messages_sent; }

void count_answered() noexcept {
  ++messages_answered;
  if (messages_answered == messages_sent && all_answered != nullptr) {
    std::exchange(all_answered, nullptr)->set_value();
  }
}

namespace {

// Drives one shard's queues (both directions) and its alien queue.
class smp_poller final : public poller {
 public:
  smp_poller(smp_runtime& rt, unsigned shard) : _taking_messages(&rt.taking_messages[shard]) {
    for (unsigned other = 0; other < rt.shards; ++other) {
      if (other == shard) continue;
      _incoming.push_back(rt.queue(other, shard));
      _outgoing.push_back(rt.queue(shard, other));
      _peers.push_back(other);
    }
    _received.assign(_incoming.size(), 0);
    _answered.assign(_outgoing.size(), 0);
    _alien = alien_queue(shard);
    register_metrics();
  }

  bool poll() noexcept override {
    // Memory this shard freed for others goes back in batches; memory
    // others freed for it comes home.
    memory::flush_remote_frees();
    bool did = memory::drain_remote_frees() > 0;
    for (std::size_t i = 0; i < _incoming.size(); ++i) {
      const std::size_t n = _incoming[i]->process_requests();
      _received[i] += n;
      did |= n > 0;
    }
    for (auto* q : _incoming) did |= q->flush_responses();
    for (auto* q : _outgoing) did |= q->flush_requests();
    for (std::size_t i = 0; i < _outgoing.size(); ++i) {
      const std::size_t n = _outgoing[i]->complete_responses();
      _answered[i] += n;
      did |= n > 0;
    }
    did |= _alien->process() > 0;
    if (shard_stopping && !did) {
      // The answer to the stop message has been flushed: nothing is owed.
      // From here on nobody may send this shard a message.
      shard_stopping = false;
      _taking_messages->store(false, std::memory_order_release);
      engine().stop();
    }
    return did;
  }

  bool has_work() noexcept override {
    for (auto* q : _incoming) {
      if (q->rx_has_work()) return true;
    }
    for (auto* q : _outgoing) {
      if (q->tx_has_work()) return true;
    }
    return _alien->has_work() || shard_stopping;
  }

 private:
  std::vector<smp_message_queue*> _incoming;
  std::vector<smp_message_queue*> _outgoing;
  std::vector<unsigned> _peers;            // the other shard of _incoming[i] and _outgoing[i]
  std::vector<std::uint64_t> _received;    // messages from _peers[i] run here
  std::vector<std::uint64_t> _answered;    // messages to _peers[i] answered
  alien::message_queue* _alien;
  std::atomic<bool>* _taking_messages;
  metrics::metric_groups _metrics;  // (after what it reads)

  // The shard's smp and memory metrics, while it runs.
  void register_metrics() {
    std::vector<metrics::metric_definition> smp;
    for (std::size_t i = 0; i < _peers.size(); ++i) {
      const metrics::labels peer{{"peer", std::to_string(_peers[i])}};
      smp.push_back(metrics::make_counter("messages_received_total", "Messages from the peer shard run here.",
                                          _received[i], peer));
      smp.push_back(metrics::make_counter("messages_sent_total", "Messages to the peer shard, answered.",
                                          _answered[i], peer));
      smp.push_back(metrics::make_gauge("messages_in_flight", "Messages to the peer shard not yet answered.",
                                        [q = _outgoing[i]] { return static_cast<double>(q->in_flight()); }, peer));
    }
    if (!smp.empty()) _metrics.add_group("smp", std::move(smp));
    auto stat = [](auto field) {
      return [field] { return static_cast<double>(memory::local_stats().*field); };
    };
    _metrics.add_group(
        "memory",
        {
            metrics::make_gauge("allocated_bytes", "Bytes of live allocations.",
                                stat(&memory::allocator_stats::bytes_in_use)),
            metrics::make_gauge("free_bytes", "Bytes the shard holds, not in use.",
                                stat(&memory::allocator_stats::bytes_free)),
            metrics::make_counter("mallocs_total", "Allocations.", stat(&memory::allocator_stats::mallocs)),
            metrics::make_counter("frees_total", "Frees.", stat(&memory::allocator_stats::frees)),
            metrics::make_counter("cross_shard_frees_total", "Frees of this shard's memory by other shards.",
                                  stat(&memory::allocator_stats::cross_shard_frees)),
            metrics::make_counter("failed_allocations_total", "Allocations that failed.",
                                  stat(&memory::allocator_stats::failed_allocations)),
        });
  }
};

void pin_to(unsigned cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); rc != 0) {
    smp_logger().warn("could not pin shard {} to CPU {}: {}", this_shard, cpu,
                      std::system_category().message(rc));
  }
}

// This shard's messages, all answered.
future<> wait_all_answered() {
  if (messages_answered == messages_sent) return make_ready_future<>();
  auto* p = new promise<>();
  all_answered = p;
  return p->get_future().finally([p] { delete p; });
}

// Resolves when no user message is in flight anywhere: every shard has had
// all its messages answered, twice in a row with the same total sent (so a
// message sent while the first round ran is not missed) -- or, when
// `rounds_max` rounds pass without that (somebody keeps sending), anyway.
future<> quiesce(unsigned rounds_max) {
  return do_with(std::uint64_t(~0ull), 0u, [rounds_max](std::uint64_t& previous_total, unsigned& rounds) {
    return repeat([&previous_total, &rounds, rounds_max] {
      std::vector<future<std::uint64_t>> answers;
      for (unsigned s = 0; s < smp::count; ++s) {
        answers.push_back(submit(
            s, [] { return wait_all_answered().then([] { return messages_sent; }); }, false));
      }
      return when_all_succeed(answers.begin(), answers.end())
          .then([&previous_total, &rounds, rounds_max](std::vector<std::uint64_t> sent) {
            std::uint64_t total = std::accumulate(sent.begin(), sent.end(), std::uint64_t{0});
            bool stable = total == previous_total || ++rounds >= rounds_max;
            previous_total = total;
            return stable ? stop_iteration::yes : stop_iteration::no;
          });
    });
  });
}

future<> stop_other_shards() {
  std::vector<future<>> stops;
  for (unsigned s = 1; s < smp::count; ++s) {
    stops.push_back(submit(s, [] { shard_stopping = true; }, false));
  }
  return when_all_succeed(stops.begin(), stops.end());
}

// A grace period for work still in flight when main returns (messages whose
// handlers send more): this many quiet-check rounds before new user
// messages are refused.
constexpr unsigned grace_rounds = 100;

// Quiet (within the grace period), then refusing new user messages, then
// quiet again (the ones accepted before the refusal are answered; with no
// new ones this ends), then the other shards stop: no message is lost, and
// none reaches a stopped shard.
future<> shutdown(smp_runtime& rt) {
  return quiesce(grace_rounds)
      .then([] {
        std::vector<future<>> hooks;
        for (unsigned s = 0; s < smp::count; ++s) hooks.push_back(submit(s, [] { return run_shutdown_hooks(); }, false));
        return when_all_succeed(hooks.begin(), hooks.end());
      })
      .then([] { return quiesce(grace_rounds); })
      .then([&rt] {
        rt.accepting_user_messages.store(false, std::memory_order_release);
        return quiesce(~0u);
      })
      .then([] { return stop_other_shards(); });
}

}  // namespace
}  // namespace smp_internal

void smp::at_shutdown(noncopyable_function<future<>()> f) {
  if (smp_internal::runtime.load() == nullptr) return;  // a lone reactor: never run
  if (shutdown_hooks_ran) {
    smp_logger().warn("a shutdown hook registered after this shard's hooks ran is not run");
    return;
  }
  if (shutdown_hooks == nullptr) shutdown_hooks = new std::vector<noncopyable_function<future<>()>>;
  shutdown_hooks->push_back(std::move(f));
}

int smp::run(smp_options options, noncopyable_function<future<int>()> main) {
  using smp_internal::smp_runtime;
  const unsigned n = options.cpus.empty() ? 1 : static_cast<unsigned>(options.cpus.size());
  if (n > smp_internal::shards_max) {
    throw std::invalid_argument("smp::run: more than " + std::to_string(smp_internal::shards_max) +
                                " shards");
  }
  smp_runtime rt(n);
  smp_runtime* expected = nullptr;
  if (!smp_internal::runtime.compare_exchange_strong(expected, &rt)) {
    throw std::logic_error("smp::run() is already running");
  }

  auto shard_options = [&](unsigned s) {
    reactor_options o = options.reactor;
    o.shard_id = static_cast<int>(s);
    if (s != 0) o.stop_on_sigint_sigterm = false;
    return o;
  };

  // Shards 1..n-1 on threads of their own, which take no signals (those are
  // shard 0's business; each reactor lets in the one its watchdog needs).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::exception_ptr start_error;
  for (unsigned s = 1; s < n && !start_error; ++s) {
    try {
      rt.threads.emplace_back([&rt, &options, s, o = shard_options(s)] {
        smp_internal::this_shard = s;
        shutdown_hooks_ran = false;
        memory::bind_this_thread_to_shard(s);
        // Declared before the reactor, so destroyed after it.
        struct unbind_at_exit {
          ~unbind_at_exit() { memory::unbind_this_thread(); }
        } unbind;
        if (options.pin_threads) smp_internal::pin_to(options.cpus[s].os_index);
        std::unique_ptr<reactor> r;
        try {
          r = std::make_unique<reactor>(o);
        } catch (const std::exception& e) {
          smp_logger().error("shard {} could not start its reactor: {}", s, e.what());
          rt.failed.store(true);
        }
        rt.reactors[s] = r.get();
        rt.started.arrive_and_wait();
        if (r && !rt.failed.load()) smp_internal::build_outgoing_queues(rt, s);
        rt.queues_built.count_down();
        rt.queues_ready.wait();
        if (!r || rt.failed.load()) return;
        smp_internal::smp_poller poller(rt, s);
        r->add_poller(&poller);
        r->run();
        r->remove_poller(&poller);
        drop_shutdown_hooks();  // (registered too late to run)
        // Foreign threads must find the inbox closed before the reactor goes
        // (their work still in flight fails), and what others dropped of
        // this shard's is deleted here, on its thread.
        smp_internal::alien_queue(s)->detach();
        smp_internal::drain_deferred_destructions(s);
        rt.reactors_may_go.wait();
      });
    } catch (...) {
      start_error = std::current_exception();
      rt.failed.store(true);
      // The threads that were not made, and shard 0, will not arrive.
      rt.started.count_down(static_cast<std::ptrdiff_t>(n - s + 1));
      rt.queues_built.count_down(static_cast<std::ptrdiff_t>(n - s));
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);

  smp_internal::this_shard = 0;
  shutdown_hooks_ran = false;
  drop_shutdown_hooks();  // (a previous run's, never run)
  memory::bind_this_thread_to_shard(0);
  if (options.pin_threads && !options.cpus.empty()) smp_internal::pin_to(options.cpus[0].os_index);
  std::unique_ptr<reactor> r;
  if (!start_error) {
    try {
      r = std::make_unique<reactor>(shard_options(0));
    } catch (...) {
      start_error = std::current_exception();
      rt.failed.store(true);
    }
    rt.reactors[0] = r.get();
    rt.started.arrive_and_wait();
  }
  if (!rt.failed.load()) smp_internal::build_outgoing_queues(rt, 0);
  rt.queues_built.arrive_and_wait();
  if (!rt.failed.load()) {
    for (unsigned s = 0; s < n; ++s) {
      rt.taking_messages[s].store(true, std::memory_order_relaxed);
      smp_internal::deferred_destructions[s].store(nullptr, std::memory_order_relaxed);
    }
    for (unsigned s = 0; s < n; ++s) smp_internal::alien_queue(s)->attach(rt.reactors[s], s);
    count = n;
    rt.accepting_user_messages.store(true, std::memory_order_release);
    rt.running.store(true, std::memory_order_release);
  }
  rt.queues_ready.count_down();

  auto finish = [&] {
    drop_shutdown_hooks();  // (a run that never shut down cleanly)
    rt.reactors_may_go.count_down();
    for (auto& t : rt.threads) t.join();
    rt.running.store(false);
    count = 1;
    smp_internal::runtime.store(nullptr);
    if (r) {
      smp_internal::alien_queue(0)->detach();
      smp_internal::drain_deferred_destructions(0);
    }
    r.reset();
    memory::unbind_this_thread();
  };
  if (rt.failed.load()) {
    finish();
    if (start_error) std::rethrow_exception(start_error);
    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                            "smp::run: a shard could not start (see the log)");
  }

  smp_internal::smp_poller poller(rt, 0);
  r->add_poller(&poller);
  bool shut_down = false;
  int code = r->run([&]() -> future<int> {
    return futurize_invoke(main).then_wrapped([&shut_down, &rt](future<int>&& done) {
      return smp_internal::shutdown(rt).then_wrapped(
          [&shut_down, done = std::move(done)](future<>&& down) mutable {
            shut_down = true;
            down.ignore_ready_future();
            return std::move(done);
          });
    });
  });
  if (!shut_down) {
    // The reactor was stopped before main finished (a signal): shut the
    // others down all the same.
    future<> down = smp_internal::shutdown(rt);
    r->run_until([&] { return down.available(); });
    down.ignore_ready_future();
  }
  r->remove_poller(&poller);
  finish();
  return code;
}

}  // namespace reef
