// Collecting metrics across two shards.
#include "smp/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <memory>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "smp/smp.h"
#include "smp/testing/shards.h"

namespace reef::metrics {
namespace {

// Runs `main` on shard 0 of two shards; the test fails if it does.
void run_on_two_shards(noncopyable_function<future<>()> main) {
  int code = smp::run(testing::two_shards(reactor_options{}), [&main]() -> future<int> {
    return main().then_wrapped([](future<>&& done) {
      if (!done.failed()) return 0;
      try {
        std::rethrow_exception(done.get_exception());
      } catch (const std::exception& e) {
        ADD_FAILURE() << "main failed: " << e.what();
      }
      return 1;
    });
  });
  EXPECT_EQ(code, 0);
}

// One owner per shard: a counter it bumps, and a gauge.
struct owner {
  std::uint64_t requests = 0;
  metric_groups metrics;
  owner() {
    metrics.add_group("test", {
                                  make_counter("requests_total", "Requests served.", requests),
                                  make_gauge("shard_number", "The shard.", [] { return double(this_shard_id()); }),
                              });
  }
};

thread_local std::unique_ptr<owner> local_owner;

future<> collect_on_two_shards() {
  co_await smp::invoke_on_all([] { local_owner = std::make_unique<owner>(); });
  // (Only ours: the reactor, the allocator and smp have theirs.)
  std::vector<family> all = co_await collect_all_shards("test_");
  EXPECT_EQ(all.size(), 2u);
  const family& requests = all[0];
  EXPECT_EQ(requests.name, "test_requests_total");
  EXPECT_EQ(requests.samples.size(), smp::count);
  for (unsigned s = 0; s < requests.samples.size(); ++s) {
    EXPECT_EQ(requests.samples[s].labels, (labels{{"shard", std::to_string(s)}}));
    EXPECT_EQ(requests.samples[s].value, 0);
  }
  EXPECT_EQ(all[1].samples.back().value, smp::count - 1);
  // Work done on shard 1 shows as shard 1's sample.
  const unsigned last = smp::count - 1;
  co_await smp::submit_to(last, [] { local_owner->requests += 100; });
  all = co_await collect_all_shards("test_req");
  EXPECT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].samples[last].value, 100);
  co_await smp::invoke_on_all([] { local_owner.reset(); });
  all = co_await collect_all_shards("test_");
  EXPECT_TRUE(all.empty());
  // The framework's own: the reactor's on every shard, smp's per peer.
  all = co_await collect_all_shards();
  std::size_t reactors = 0, peers = 0;
  for (const family& f : all) {
    if (f.name == "reactor_tasks_run_total") reactors = f.samples.size();
    if (f.name == "smp_messages_sent_total") peers = f.samples.size();
  }
  EXPECT_EQ(reactors, smp::count);
  EXPECT_EQ(peers, smp::count * (smp::count - 1));
}

TEST(metrics, collect_all_shards_labels_each_shard) { run_on_two_shards(collect_on_two_shards); }

// What a scrape loop running through shutdown saw.
struct scrapes {
  int whole = 0;    // every shard's reactor metrics in it
  int partial = 0;  // succeeded without every shard (must not happen)
  int failed = 0;
  bool ended = false;
};

// Scrapes until a scrape fails, or smp::run() has ended (one shard left),
// or 100,000 scrapes: not awaited by main, so it runs on while the shards
// stop.
future<> scrape_through_shutdown(scrapes& r) {
  const unsigned shards = smp::count;
  for (int i = 0; i < 100'000 && smp::count == shards; ++i) {
    try {
      std::vector<family> all = co_await collect_all_shards("reactor_tasks_run_total");
      if (all.size() == 1 && all[0].samples.size() == shards) {
        ++r.whole;
      } else {
        ++r.partial;
      }
    } catch (const std::exception&) {
      ++r.failed;
      break;
    }
    co_await yield();
  }
  r.ended = true;
}

TEST(metrics, a_scrape_while_the_shards_stop_fails_at_once_and_never_hangs) {
  scrapes r;
  run_on_two_shards([&r]() -> future<> {
    (void)scrape_through_shutdown(r);
    return sleep(std::chrono::milliseconds(20));  // some scrapes while all run
  });
  EXPECT_TRUE(r.ended) << "the loop was still waiting for a scrape when smp::run() returned";
  EXPECT_GT(r.whole, 0);
  EXPECT_EQ(r.partial, 0);
  EXPECT_LE(r.failed, 1);
}

TEST(metrics, merge_keeps_one_family_per_name_in_name_order) {
  std::vector<std::vector<family>> per_shard(2);
  per_shard[0].push_back(family{"b", "B", metric_kind::gauge, {sample{{}, 1, {}}}});
  per_shard[1].push_back(family{"a", "A", metric_kind::counter, {sample{{{"k", "v"}}, 2, {}}}});
  per_shard[1].push_back(family{"b", "B", metric_kind::gauge, {sample{{}, 3, {}}}});
  auto all = merge_shards(std::move(per_shard));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "a");
  EXPECT_EQ(all[0].samples[0].labels, (labels{{"k", "v"}, {"shard", "1"}}));
  ASSERT_EQ(all[1].samples.size(), 2u);
  EXPECT_EQ(all[1].samples[0].value, 1);
  EXPECT_EQ(all[1].samples[1].labels, (labels{{"shard", "1"}}));
}

}  // namespace
}  // namespace reef::metrics
