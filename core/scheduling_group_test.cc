// Scheduling groups: making and ending them, bad input, continuations
// staying in their group, and the CPU divided by shares on one reactor
// (two busy groups at 100:300, a group that wakes after idling, shares
// changed mid-run). Runs once per backend (see BUILD).
#include "core/scheduling_group.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/coroutine.h"
#include "core/internal/task_queue.h"
#include "core/metrics.h"
#include "core/reactor.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

// Destroys its group at the end of a test (the registry is the process's,
// shared by every test in the binary).
struct group_guard {
  scheduling_group sg;
  group_guard(std::string_view name, std::int64_t shares) : sg(create_scheduling_group(name, shares)) {}
  group_guard(const group_guard&) = delete;
  group_guard& operator=(const group_guard&) = delete;
  ~group_guard() {
    try {
      destroy_scheduling_group(sg);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "destroying group " << sg.id() << ": " << e.what();
    }
  }
};

std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Sets *gone when destroyed (a moved-from one does not).
struct destroyed_flag {
  explicit destroyed_flag(bool* g) noexcept : gone(g) {}
  destroyed_flag(destroyed_flag&& o) noexcept : gone(std::exchange(o.gone, nullptr)) {}
  destroyed_flag(const destroyed_flag& o) = delete;
  ~destroyed_flag() {
    if (gone != nullptr) *gone = true;
  }
  bool* gone;
};

// What a busy loop got: this thread's CPU time while it ran, and the
// groups its steps ran in.
struct hog_result {
  std::int64_t cpu_ns = 0;
  std::uint64_t steps = 0;
  std::uint64_t steps_outside_group = 0;
  std::chrono::steady_clock::time_point first_step{};
};

// Spins in steps of about 20 µs of CPU, yielding after each, until `stop`.
future<> hog(scheduling_group sg, hog_result& r, const bool& stop) {
  while (!stop) {
    const std::int64_t began = thread_cpu_ns();
    std::int64_t now = began;
    while (now - began < 20'000) now = thread_cpu_ns();
    r.cpu_ns += now - began;
    if (r.steps++ == 0) r.first_step = std::chrono::steady_clock::now();
    if (current_scheduling_group() != sg) ++r.steps_outside_group;
    co_await yield();
  }
}

future<> start_hog(scheduling_group sg, hog_result& r, const bool& stop) {
  return with_scheduling_group(sg, [sg, &r, &stop] { return hog(sg, r, stop); });
}

double ratio(std::int64_t a, std::int64_t b) { return b == 0 ? 0 : static_cast<double>(a) / static_cast<double>(b); }

// Whether b:a is within `tolerance` of `target`, the time the two groups'
// steps did not account for (`lost`: the thread descheduled, as when CI
// runs tests beside each other on 2 CPUs, and the reactor's own work)
// given to whichever side brings it closest. The reactor charges a group
// wall-clock time, so time the thread spent descheduled counts against the
// group that ran then.
::testing::AssertionResult ratio_near(std::int64_t b, std::int64_t a, std::chrono::steady_clock::duration wall,
                                      double target, double tolerance) {
  const std::int64_t lost =
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count() - a - b);
  const double lowest = ratio(b, a + lost), highest = ratio(b + lost, a);
  if (highest >= target * (1 - tolerance) && lowest <= target * (1 + tolerance)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "ratio " << ratio(b, a) << " (" << lowest << " to " << highest << " with "
                                       << lost / 1e6 << " ms unaccounted), not " << target << " +-"
                                       << tolerance * 100 << "%: ms " << b / 1e6 << " against " << a / 1e6;
}

TEST(scheduling_group, refuses_bad_shares_and_names) {
  for (std::int64_t shares : {std::int64_t{0}, std::int64_t{-1}, scheduling_group::shares_max + 1}) {
    try {
      create_scheduling_group("bad", shares);
      ADD_FAILURE() << "shares " << shares << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("shares " + std::to_string(shares)), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(create_scheduling_group("", 100), std::invalid_argument);
  EXPECT_THROW(create_scheduling_group(std::string(scheduling_group::name_max + 1, 'x'), 100), std::invalid_argument);
  EXPECT_THROW(create_scheduling_group("main", 100), std::invalid_argument);  // the default group's name
  group_guard g("a", 100);
  EXPECT_THROW(create_scheduling_group("a", 100), std::invalid_argument);
  EXPECT_THROW(g.sg.set_shares(0), std::invalid_argument);
  EXPECT_THROW(g.sg.set_shares(-5), std::invalid_argument);
  EXPECT_EQ(g.sg.shares(), 100);  // a refused change changes nothing
  g.sg.set_shares(250);
  EXPECT_EQ(g.sg.shares(), 250);
  EXPECT_EQ(g.sg.name(), "a");
  EXPECT_THROW(destroy_scheduling_group(default_scheduling_group()), std::invalid_argument);
  EXPECT_EQ(default_scheduling_group().name(), "main");
  EXPECT_EQ(default_scheduling_group().shares(), scheduling_group::default_shares);
}

TEST(scheduling_group, at_most_groups_max_and_ids_are_reused) {
  std::vector<scheduling_group> made;
  for (unsigned i = 1; i < scheduling_group::groups_max; ++i) {
    made.push_back(create_scheduling_group("g" + std::to_string(i), 10));
  }
  try {
    create_scheduling_group("one_more", 10);
    ADD_FAILURE() << "a group past the limit was made";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(scheduling_group::groups_max)), std::string::npos)
        << e.what();
  }
  const unsigned freed = made[3].id();
  destroy_scheduling_group(made[3]);
  EXPECT_THROW(destroy_scheduling_group(made[3]), std::invalid_argument);  // not live any more
  EXPECT_EQ(made[3].name(), "");
  scheduling_group again = create_scheduling_group("again", 10);
  EXPECT_EQ(again.id(), freed);
  made[3] = again;
  for (scheduling_group sg : made) destroy_scheduling_group(sg);
}

REEF_TEST(scheduling_group, continuations_stay_in_their_group) {
  group_guard g("background", 200);
  EXPECT_TRUE(current_scheduling_group().is_default());
  std::vector<unsigned> seen;
  co_await with_scheduling_group(g.sg, [&seen] {
    seen.push_back(current_scheduling_group().id());
    return sleep(1ms).then([&seen] {
      seen.push_back(current_scheduling_group().id());
      return yield();
    }).then([&seen] { seen.push_back(current_scheduling_group().id()); });
  });
  EXPECT_EQ(seen, (std::vector<unsigned>{g.sg.id(), g.sg.id(), g.sg.id()}));
  // The caller's own continuation is back in its group.
  EXPECT_TRUE(current_scheduling_group().is_default());
  // A coroutine made in the group stays in it across suspensions.
  hog_result r;
  bool stop = false;
  future<> f = start_hog(g.sg, r, stop);
  co_await sleep(5ms);
  stop = true;
  co_await std::move(f);
  EXPECT_GT(r.steps, 0u);
  EXPECT_EQ(r.steps_outside_group, 0u);
  // In another group the function lives until its work ends (here a
  // continuation reads the function's own capture).
  bool gone = false;
  bool gone_too_soon = true;
  co_await with_scheduling_group(g.sg, [flag = destroyed_flag(&gone), &gone, &gone_too_soon] {
    (void)flag;
    return sleep(1ms).then([&gone, &gone_too_soon] { gone_too_soon = gone; });
  });
  EXPECT_FALSE(gone_too_soon) << "the function was destroyed while its work ran";
  EXPECT_TRUE(gone);
  // In the current group the function runs at once.
  bool ran = false;
  future<> same = with_scheduling_group(default_scheduling_group(), [&ran] { ran = true; });
  EXPECT_TRUE(ran);
  co_await std::move(same);
  EXPECT_GT(engine().stats(g.sg).tasks_run, 0u);
  // A failure comes back to the caller.
  bool failed = false;
  try {
    co_await with_scheduling_group(g.sg, []() -> future<> { throw std::runtime_error("in the group"); });
  } catch (const std::runtime_error&) {
    failed = true;
  }
  EXPECT_TRUE(failed);
}

REEF_TEST(scheduling_group, destroying_a_group_with_work_here_is_refused) {
  group_guard g("busy", 100);
  bool stop = false;
  hog_result r;
  future<> f = start_hog(g.sg, r, stop);
  EXPECT_THROW(destroy_scheduling_group(g.sg), std::logic_error);
  stop = true;
  co_await std::move(f);
}

REEF_TEST(scheduling_group, busy_groups_divide_the_cpu_by_shares) {
  group_guard low("low", 100);
  group_guard high("high", 300);
  const auto low_before = engine().stats(low.sg).runtime;
  const auto high_before = engine().stats(high.sg).runtime;
  hog_result a, b;
  bool stop = false;
  const auto began = std::chrono::steady_clock::now();
  future<> fa = start_hog(low.sg, a, stop);
  future<> fb = start_hog(high.sg, b, stop);
  co_await sleep(1s);
  stop = true;
  co_await std::move(fa);
  co_await std::move(fb);
  const auto wall = std::chrono::steady_clock::now() - began;
  EXPECT_TRUE(ratio_near(b.cpu_ns, a.cpu_ns, wall, 3.0, 0.1)) << "thread CPU time";
  // The reactor's own count, which its choices follow.
  const auto high_ns = (engine().stats(high.sg).runtime - high_before).count();
  const auto low_ns = (engine().stats(low.sg).runtime - low_before).count();
  EXPECT_TRUE(ratio_near(high_ns, low_ns, wall, 3.0, 0.1)) << "the reactor's runtime";
  EXPECT_EQ(a.steps_outside_group + b.steps_outside_group, 0u);
}

REEF_TEST(scheduling_group, a_group_that_wakes_has_banked_no_credit) {
  group_guard early("early", 1000);
  group_guard late("late", 1000);
  hog_result a;
  bool stop = false;
  future<> fa = start_hog(early.sg, a, stop);
  co_await sleep(300ms);  // `late` idles meanwhile
  const std::int64_t a_alone = a.cpu_ns;
  hog_result b;
  const auto began = std::chrono::steady_clock::now();
  future<> fb = start_hog(late.sg, b, stop);
  co_await sleep(300ms);
  stop = true;
  co_await std::move(fa);
  co_await std::move(fb);
  const std::int64_t a_shared = a.cpu_ns - a_alone;
  // Equal shares: about half each. With banked credit `late` would have
  // had the CPU to itself.
  EXPECT_TRUE(ratio_near(b.cpu_ns, a_shared, std::chrono::steady_clock::now() - began, 1.0, 0.4))
      << "late against early";
}

// A task of a given group that does nothing.
struct group_task final : task {
  explicit group_task(unsigned group) noexcept : task(group) {}
  void run_and_dispose() noexcept override {}
};

// The group that wakes starts level with the least virtual runtime of the
// groups that have work, not with the last runner's charged one: after a
// batch of a 1-share group (far ahead then) it would otherwise wait until
// a 1000-share group caught up, about 1000 times that batch.
TEST(run_queues, a_waking_group_starts_level_with_the_least_busy_one) {
  core_internal::run_queues q;
  group_task big(1), tiny(2), waking(3);
  q.push_back(&big);
  q.push_back(&tiny);
  q.groups[1].vruntime = 1000;
  q.groups[2].vruntime = 1500;
  EXPECT_EQ(q.pick(), 1u);
  q.charge(1, 1'000'000, 1000);  // big ran 1 ms: 1000 + 1000
  EXPECT_EQ(q.groups[1].vruntime, 2000);
  EXPECT_EQ(q.pick(), 2u);  // tiny, at 1500 the least now
  q.charge(2, 500'000, 1);  // 500 µs at 1 share: 501,500
  q.push_back(&waking);
  EXPECT_EQ(q.groups[3].vruntime, 1500) << "level with the least busy group, not 501,500";
  EXPECT_EQ(q.pick(), 3u);
  // A group that was ahead keeps its own virtual runtime.
  core_internal::run_queues r;
  group_task ahead(4), behind(5);
  r.groups[4].vruntime = 9000;
  r.push_back(&behind);
  EXPECT_EQ(r.pick(), 5u);
  r.push_back(&ahead);
  EXPECT_EQ(r.groups[4].vruntime, 9000);
  EXPECT_EQ(r.pick(), 5u);
}

REEF_TEST(scheduling_group, set_shares_mid_run_changes_the_ratio) {
  group_guard one("one", 100);
  group_guard two("two", 100);
  hog_result a, b;
  bool stop = false;
  future<> fa = start_hog(one.sg, a, stop);
  future<> fb = start_hog(two.sg, b, stop);
  const auto began = std::chrono::steady_clock::now();
  co_await sleep(500ms);
  const hog_result a1 = a, b1 = b;
  const auto changed = std::chrono::steady_clock::now();
  two.sg.set_shares(300);
  co_await sleep(500ms);
  stop = true;
  co_await std::move(fa);
  co_await std::move(fb);
  EXPECT_TRUE(ratio_near(b1.cpu_ns, a1.cpu_ns, changed - began, 1.0, 0.1)) << "before set_shares";
  EXPECT_TRUE(ratio_near(b.cpu_ns - b1.cpu_ns, a.cpu_ns - a1.cpu_ns, std::chrono::steady_clock::now() - changed, 3.0,
                         0.1))
      << "after set_shares";
}

REEF_TEST(scheduling_group, a_group_has_metrics_while_it_lives) {
  const metrics::labels labels{{"group", "metered"}};
  std::uint64_t id = 0;
  {
    group_guard g("metered", 123);  // (registered at once on this shard)
    EXPECT_TRUE(metrics::is_registered("scheduling_group_runtime_seconds_total", labels));
    EXPECT_TRUE(metrics::is_registered("scheduling_group_tasks_run_total", labels));
    EXPECT_TRUE(metrics::is_registered("scheduling_group_wait_seconds_total", labels));
    EXPECT_TRUE(metrics::is_registered("scheduling_group_shares", labels));
    EXPECT_TRUE(metrics::is_registered("scheduling_group_runtime_seconds_total", {{"group", "main"}}));
    co_await with_scheduling_group(g.sg, [] { return yield(); });
    double tasks = -1;
    double shares = -1;
    for (const auto& f : metrics::read_all("scheduling_group_")) {
      for (const auto& s : f.samples) {
        if (s.labels != labels) continue;
        if (f.name == "scheduling_group_tasks_run_total") tasks = s.value;
        if (f.name == "scheduling_group_shares") shares = s.value;
      }
    }
    EXPECT_GE(tasks, 2);  // the function's task and the yield's
    EXPECT_EQ(shares, 123);
    id = g.sg.id();
  }
  EXPECT_FALSE(metrics::is_registered("scheduling_group_runtime_seconds_total", labels));
  EXPECT_NE(id, 0u);
}

}  // namespace
}  // namespace reef
