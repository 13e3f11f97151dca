// Shards and messages: each test starts two shards with smp::run() (this
// machine has two cores; nothing here assumes more).
#include "smp/smp.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/coroutine.h"
#include "core/loop.h"
#include "core/scheduling_group.h"
#include "core/sleep.h"
#include "smp/alien.h"
#include "smp/foreign_ptr.h"
#include "smp/sharded.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

smp_options two_shards() {
  smp_options o;
  topology topo = topology::discover();
  unsigned n = topo.cpus().size() >= 2 ? 2 : 1;
  o.cpus = select_cpus(topo, n, std::nullopt);
  if (o.cpus.size() < 2) {
    // One CPU: two unpinned shards on it.
    o.cpus.push_back(o.cpus.front());
    o.pin_threads = false;
  }
  o.reactor.stop_on_sigint_sigterm = false;
  return o;
}

// Runs `main` on shard 0 of two shards; the test fails if it does.
void run_on_two_shards(noncopyable_function<future<>()> main) {
  int code = smp::run(two_shards(), [&main]() -> future<int> {
    return main().then_wrapped([](future<>&& done) {
      if (done.failed()) {
        try {
          std::rethrow_exception(done.get_exception());
        } catch (const std::exception& e) {
          ADD_FAILURE() << "main failed: " << e.what();
        }
        return 1;
      }
      return 0;
    });
  });
  EXPECT_EQ(code, 0);
  EXPECT_EQ(smp::count, 1u) << "smp::run() leaves one shard behind";
}

TEST(smp, submit_to_returns_results_and_exceptions) {
  run_on_two_shards([]() -> future<> {
    EXPECT_EQ(smp::count, 2u);
    EXPECT_EQ(this_shard_id(), 0u);
    EXPECT_EQ(co_await smp::submit_to(1, [] { return this_shard_id(); }), 1u);
    std::string text = co_await smp::submit_to(1, [] {
      return sleep(1ms).then([] { return std::string("from shard ") + std::to_string(this_shard_id()); });
    });
    EXPECT_EQ(text, "from shard 1");
    bool threw = false;
    try {
      co_await smp::submit_to(1, []() -> int { throw std::runtime_error("on shard 1"); });
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "on shard 1";
    }
    EXPECT_TRUE(threw);
  });
}

// Two busy loops in `low` and `high` on this shard for 300 ms; returns the
// ratio of the CPU time the reactor gave them, high to low.
future<double> busy_groups_ratio(scheduling_group low, scheduling_group high) {
  const auto low_before = engine().stats(low).runtime;
  const auto high_before = engine().stats(high).runtime;
  bool stop = false;
  auto spin = [&stop]() -> future<> {
    return do_until([&stop] { return stop; }, [] {
      const auto until = std::chrono::steady_clock::now() + 20us;
      while (std::chrono::steady_clock::now() < until) {
      }
      return yield();
    });
  };
  future<> a = with_scheduling_group(low, spin);
  future<> b = with_scheduling_group(high, spin);
  co_await sleep(300ms);
  stop = true;
  co_await std::move(a);
  co_await std::move(b);
  const auto low_ns = (engine().stats(low).runtime - low_before).count();
  const auto high_ns = (engine().stats(high).runtime - high_before).count();
  co_return low_ns == 0 ? 0.0 : static_cast<double>(high_ns) / static_cast<double>(low_ns);
}

TEST(smp, submit_to_runs_the_work_in_a_scheduling_group_on_the_target) {
  scheduling_group sg = create_scheduling_group("remote", 200);
  scheduling_group low = create_scheduling_group("remote_low", 100);
  scheduling_group high = create_scheduling_group("remote_high", 300);
  run_on_two_shards([=]() -> future<> {
    // Move-only work; it and its continuation run in the group there.
    auto groups = co_await smp::submit_to(1, sg, [held = std::make_unique<int>(1)] {
      const unsigned first = current_scheduling_group().id();
      return sleep(1ms).then([first] { return std::pair(first, current_scheduling_group().id()); });
    });
    EXPECT_EQ(groups.first, sg.id());
    EXPECT_EQ(groups.second, sg.id());
    EXPECT_TRUE(current_scheduling_group().is_default());  // the reply's continuation: the caller's group
    EXPECT_EQ(co_await smp::submit_to(0, sg, [] { return current_scheduling_group().id(); }), sg.id());
    bool threw = false;
    try {
      co_await smp::submit_to(1, sg, []() -> int { throw std::runtime_error("in the group"); });
    } catch (const std::runtime_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    // The target shard divides its CPU by the groups' shares.
    const double ratio = co_await smp::submit_to(1, [low, high] { return busy_groups_ratio(low, high); });
    EXPECT_GE(ratio, 2.7);
    EXPECT_LE(ratio, 3.3);
  });
  for (scheduling_group g : {sg, low, high}) destroy_scheduling_group(g);
}

TEST(smp, a_message_to_the_own_shard_runs_at_once) {
  run_on_two_shards([]() -> future<> {
    bool ran = false;
    auto f = smp::submit_to(0, [&] { ran = true; });
    EXPECT_TRUE(ran);
    EXPECT_TRUE(f.available());
    co_await std::move(f);
  });
}

TEST(smp, submit_to_a_shard_that_does_not_exist_fails) {
  run_on_two_shards([]() -> future<> {
    EXPECT_THROW(co_await smp::submit_to(7, [] {}), std::invalid_argument);
  });
  // After smp::run(), only shard 0 (this thread, no reactor needed) exists.
  auto f = smp::submit_to(1, [] {});
  EXPECT_TRUE(f.failed());
  EXPECT_THROW(f.get(), std::invalid_argument);
}

TEST(smp, messages_from_one_shard_to_another_start_in_order) {
  run_on_two_shards([]() -> future<> {
    constexpr int n = 2000;  // many more than fit in flight at once
    auto seen = std::make_shared<std::vector<int>>();  // touched on shard 1 only
    std::vector<future<>> sent;
    for (int i = 0; i < n; ++i) sent.push_back(smp::submit_to(1, [seen, i] { seen->push_back(i); }));
    for (auto& f : sent) co_await std::move(f);
    auto in_order = co_await smp::submit_to(1, [seen] {
      for (int i = 0; i < static_cast<int>(seen->size()); ++i) {
        if ((*seen)[i] != i) return false;
      }
      return static_cast<int>(seen->size()) == n;
    });
    EXPECT_TRUE(in_order);
  });
}

thread_local int touched = 0;

TEST(smp, invoke_on_all_and_map_reduce_reach_every_shard) {
  run_on_two_shards([]() -> future<> {
    co_await smp::invoke_on_all([] { touched = 10 + static_cast<int>(this_shard_id()); });
    int sum = co_await smp::map_reduce([] { return touched; }, 0, std::plus<int>());
    EXPECT_EQ(sum, 10 + 11);
    co_await smp::invoke_on_others([] { touched = 0; });
    EXPECT_EQ(touched, 10) << "invoke_on_others skips the caller";
    int after = co_await smp::map_reduce([] { return touched; }, 0, std::plus<int>());
    EXPECT_EQ(after, 10);
  });
}

TEST(smp, back_pressure_holds_senders_and_drops_nothing) {
  std::atomic<int> processed{0};
  run_on_two_shards([&processed]() -> future<> {
    constexpr int n = 10'000;
    std::vector<future<>> sent;
    sent.reserve(n);
    // Far more than the in-flight limit, all sent at once: the surplus
    // waits on shard 0 for room.
    for (int i = 0; i < n; ++i) {
      sent.push_back(smp::submit_to(1, [&processed] { processed.fetch_add(1, std::memory_order_relaxed); }));
    }
    for (auto& f : sent) co_await std::move(f);
    EXPECT_EQ(processed.load(), n);
  });
}

TEST(smp, shutdown_waits_for_messages_in_flight) {
  std::atomic<int> finished{0};
  run_on_two_shards([&finished]() -> future<> {
    for (int i = 0; i < 300; ++i) {
      // Sent and forgotten: main returns before any is answered.
      (void)smp::submit_to(1, [&finished] {
        return sleep(2ms).then([&finished] { finished.fetch_add(1); });
      });
    }
    return make_ready_future<>();
  });
  EXPECT_EQ(finished.load(), 300) << "smp::run() returned before every message was answered";
}

// A shard that never stops sending: shutdown still ends, and the sender is
// told (shard_stopped_error) rather than left waiting.
std::atomic<bool> sender_refused{false};
future<> keep_sending() {
  try {
    for (;;) co_await smp::submit_to(0, [] {});
  } catch (const shard_stopped_error&) {
    sender_refused.store(true);
  }
}

TEST(smp, shutdown_refuses_a_sender_that_never_stops) {
  sender_refused.store(false);
  run_on_two_shards([]() -> future<> {
    co_await smp::submit_to(1, [] { (void)keep_sending(); });
  });
  EXPECT_TRUE(sender_refused.load());
}

TEST(smp, shutdown_hooks_run_on_every_shard_last_first_while_messages_flow) {
  static std::atomic<int> ran{0};
  static std::vector<int> order[2];
  ran = 0;
  order[0].clear();
  order[1].clear();
  run_on_two_shards([]() -> future<> {
    co_await smp::invoke_on_all([] {
      const unsigned me = this_shard_id();
      smp::at_shutdown([me] {
        order[me].push_back(1);
        return make_ready_future<>();
      });
      smp::at_shutdown([me]() -> future<> {
        // A hook may still message another shard; its captures are still
        // there after it waited (a coroutine lambda reads them from its
        // closure).
        co_await smp::submit_to(1 - me, [] {});
        order[me].push_back(2);
        ++ran;
      });
      smp::at_shutdown([]() -> future<> { throw std::runtime_error("this hook fails; the others still run"); });
    });
    EXPECT_EQ(ran.load(), 0) << "hooks wait for main";
  });
  EXPECT_EQ(ran.load(), 2);
  for (auto& o : order) EXPECT_EQ(o, (std::vector<int>{2, 1}));
}

TEST(smp, a_sleeping_shard_wakes_for_a_message) {
  run_on_two_shards([]() -> future<> {
    auto sleeps_of_shard_1 = [] { return smp::submit_to(1, [] { return engine().stats().sleeps; }); };
    std::uint64_t before = co_await sleeps_of_shard_1();
    co_await sleep(20ms);  // shard 1 has nothing to do: it sleeps
    std::uint64_t after = co_await sleeps_of_shard_1();
    EXPECT_GT(after, before) << "shard 1 never slept";
  });
}

TEST(smp, alien_threads_submit_and_wait) {
  run_on_two_shards([]() -> future<> {
    // A blocking-call thread is not a shard: the kind of thread alien is for.
    unsigned shard = co_await run_blocking([] {
      return alien::submit_to(1, [] { return sleep(1ms).then([] { return this_shard_id(); }); }).get();
    });
    EXPECT_EQ(shard, 1u);
    bool threw = co_await run_blocking([] {
      try {
        alien::submit_to(1, []() -> int { throw std::logic_error("alien"); }).get();
      } catch (const std::logic_error&) {
        return true;
      }
      return false;
    });
    EXPECT_TRUE(threw);
  });
  // After smp::run(): refused.
  EXPECT_THROW(alien::submit_to(0, [] {}).get(), shard_stopped_error);
}

// Work a foreign thread waits for, which its shard never finishes: when
// the shard stops, the foreign thread hears shard_stopped_error instead of
// waiting for ever.
thread_local std::unique_ptr<promise<>> never_kept;

TEST(smp, alien_work_pending_when_its_shard_stops_fails) {
  std::future<void> pending;
  run_on_two_shards([&pending]() -> future<> {
    pending = co_await run_blocking([] {
      return alien::submit_to(1, [] {
        never_kept = std::make_unique<promise<>>();
        // Broken only as the reactor goes, long after the shard stopped.
        engine().at_destroy([] { never_kept.reset(); });
        return never_kept->get_future();
      });
    });
    // Main returns with the work still waiting on shard 1.
  });
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the foreign thread would wait for ever";
  EXPECT_THROW(pending.get(), shard_stopped_error);
}

// --- sharded<> ----------------------------------------------------------------

struct event_log {
  std::mutex mutex;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(e));
  }
};

struct recorder : peering_sharded_service<recorder> {
  recorder(event_log* log, int base, int per_shard) : log(log), value(base + per_shard) {
    log->add("construct " + std::to_string(this_shard_id()));
  }
  ~recorder() { log->add("destroy " + std::to_string(this_shard_id())); }
  future<> stop() {
    log->add("stop " + std::to_string(this_shard_id()));
    return sleep(1ms);
  }
  event_log* log;
  int value;
};

TEST(sharded, start_stop_order_and_per_shard_construction) {
  event_log log;
  run_on_two_shards([&log]() -> future<> {
    sharded<recorder> s;
    co_await s.start(&log, 100, sharded_parameter([] { return static_cast<int>(this_shard_id()) * 10; }));
    EXPECT_EQ(s.local().value, 100);
    int sum = co_await s.map_reduce([](recorder& r) { return r.value; }, 0, std::plus<int>());
    EXPECT_EQ(sum, 100 + 110);
    int on_1 = co_await s.invoke_on(1, [](recorder& r) { return r.value; });
    EXPECT_EQ(on_1, 110);
    // A peer reached through container().
    int peer = co_await s.local().container().invoke_on(1, [](recorder& r) { return r.value + 1; });
    EXPECT_EQ(peer, 111);
    co_await s.invoke_on_all([](recorder& r) { r.value = 0; });
    EXPECT_EQ(co_await s.map_reduce([](recorder& r) { return r.value; }, 0, std::plus<int>()), 0);
    co_await s.stop();
  });
  std::lock_guard lock(log.mutex);
  auto index = [&](const std::string& e) {
    for (std::size_t i = 0; i < log.events.size(); ++i) {
      if (log.events[i] == e) return static_cast<int>(i);
    }
    return -1;
  };
  for (const char* e : {"construct 0", "construct 1", "stop 0", "stop 1", "destroy 0", "destroy 1"}) {
    EXPECT_GE(index(e), 0) << "missing: " << e;
  }
  EXPECT_LT(std::max(index("stop 0"), index("stop 1")), std::min(index("destroy 0"), index("destroy 1")))
      << "every instance stops before any is destroyed";
}

struct fails_on_shard_1 {
  fails_on_shard_1() {
    if (this_shard_id() == 1) throw std::runtime_error("cannot start here");
  }
};

TEST(sharded, map_collects_in_shard_order_and_invoke_on_others_skips_the_caller) {
  event_log log;
  run_on_two_shards([&log]() -> future<> {
    sharded<recorder> s;
    co_await s.start(&log, 0, sharded_parameter([] { return static_cast<int>(this_shard_id()) + 1; }));
    std::vector<int> values = co_await s.map([](recorder& r) { return r.value * 10; });
    EXPECT_EQ(values, (std::vector<int>{10, 20}));
    std::atomic<int> visited_mask{0};
    co_await s.invoke_on_others([&visited_mask](recorder&) { visited_mask |= 1 << this_shard_id(); });
    EXPECT_EQ(visited_mask.load(), 2) << "shard 1 only";
    bool failed = false;
    try {
      co_await s.map([](recorder& r) -> int {
        if (this_shard_id() == 1) throw std::runtime_error("shard 1");
        return r.value;
      });
    } catch (const std::runtime_error&) {
      failed = true;
    }
    EXPECT_TRUE(failed);
    co_await s.stop();
  });
}

TEST(sharded, a_failed_start_cleans_up_and_fails) {
  run_on_two_shards([]() -> future<> {
    sharded<fails_on_shard_1> s;
    EXPECT_THROW(co_await s.start(), std::runtime_error);
    EXPECT_FALSE(s.local_is_initialized());
  });
}

struct fails_to_stop {
  explicit fails_to_stop(std::atomic<int>* destroyed) : destroyed(destroyed) {}
  ~fails_to_stop() { destroyed->fetch_add(1 + 10 * static_cast<int>(this_shard_id())); }
  future<> stop() {
    if (this_shard_id() == 1) return make_exception_future<>(std::runtime_error("stop failed"));
    return make_ready_future<>();
  }
  std::atomic<int>* destroyed;
};

TEST(sharded, a_failed_stop_still_destroys_every_instance_on_its_shard) {
  std::atomic<int> destroyed{0};
  run_on_two_shards([&destroyed]() -> future<> {
    sharded<fails_to_stop> s;
    co_await s.start(&destroyed);
    EXPECT_THROW(co_await s.stop(), std::runtime_error);
    EXPECT_FALSE(s.local_is_initialized());
  });
  // Shard 0's destructor added 1, shard 1's 11: each ran, each once.
  EXPECT_EQ(destroyed.load(), 12);
}

// --- foreign_ptr --------------------------------------------------------------

struct owned_object {
  explicit owned_object(std::atomic<int>* destroyed_on) : destroyed_on(destroyed_on), made_on(this_shard_id()) {}
  ~owned_object() { destroyed_on->store(static_cast<int>(this_shard_id())); }
  std::atomic<int>* destroyed_on;
  unsigned made_on;
};

TEST(foreign_ptr, is_destroyed_on_its_owner) {
  std::atomic<int> destroyed_on{-1};
  run_on_two_shards([&destroyed_on]() -> future<> {
    // Made on shard 1, handed to shard 0, dropped there.
    auto p = co_await smp::submit_to(1, [&destroyed_on] {
      return make_foreign(std::make_unique<owned_object>(&destroyed_on));
    });
    EXPECT_EQ(p.get_owner_shard(), 1u);
    EXPECT_EQ(p->made_on, 1u);
    p.reset();
    EXPECT_FALSE(p);
  });
  // smp::run() waited for the destroying message.
  EXPECT_EQ(destroyed_on.load(), 1);
}

// Dropped on shard 0 once shutdown refuses users' messages (shard 1 still
// runs): still destroyed on shard 1, by a message of smp's own.
future<> drop_once_refused(foreign_ptr<std::unique_ptr<owned_object>> p) {
  for (;;) {
    try {
      co_await smp::submit_to(1, [] {});
    } catch (const shard_stopped_error&) {
      break;  // shutdown has begun
    }
  }
  p.reset();
}

TEST(foreign_ptr, dropped_during_shutdown_it_is_still_destroyed_on_its_owner) {
  std::atomic<int> destroyed_on{-1};
  run_on_two_shards([&destroyed_on]() -> future<> {
    auto p = co_await smp::submit_to(1, [&destroyed_on] {
      return make_foreign(std::make_unique<owned_object>(&destroyed_on));
    });
    (void)drop_once_refused(std::move(p));
  });
  EXPECT_EQ(destroyed_on.load(), 1) << "destroyed on the wrong shard, or never";
}

// Dropped after smp::run() has returned: the owner is gone, and the object
// is leaked and counted rather than destroyed on this thread.
TEST(foreign_ptr, dropped_after_its_owner_is_gone_it_is_leaked_not_destroyed_elsewhere) {
  std::atomic<int> destroyed_on{-1};
  foreign_ptr<std::unique_ptr<owned_object>> kept;
  run_on_two_shards([&destroyed_on, &kept]() -> future<> {
    kept = co_await smp::submit_to(1, [&destroyed_on] {
      return make_foreign(std::make_unique<owned_object>(&destroyed_on));
    });
  });
  const std::size_t leaked_before = smp_internal::leaked_remote_objects();
  kept.reset();
  EXPECT_EQ(destroyed_on.load(), -1) << "destroyed on a thread that is not shard 1";
  EXPECT_EQ(smp_internal::leaked_remote_objects(), leaked_before + 1);
}

TEST(foreign_ptr, copy_of_a_shared_pointer_is_made_on_the_owner) {
  std::atomic<int> destroyed_on{-1};
  run_on_two_shards([&destroyed_on]() -> future<> {
    auto p = co_await smp::submit_to(1, [&destroyed_on] {
      return make_foreign(std::make_shared<owned_object>(&destroyed_on));
    });
    auto q = co_await p.copy();
    EXPECT_EQ(q.get(), p.get());
    EXPECT_EQ(q.get_owner_shard(), 1u);
  });
  EXPECT_EQ(destroyed_on.load(), 1);
}

}  // namespace
}  // namespace reef
